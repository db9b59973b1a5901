using System.Net;
using System.Text.Json.Nodes;

namespace Lethe.Homeserver.Tests.Infrastructure;

/// <summary>Room operations tests use often, asserting success.</summary>
public static class RoomHelpers
{
    private static int _txn;

    /// <summary>Creates a room and returns its ID.</summary>
    public static async Task<string> CreateRoomAsync(this MatrixClient c, JsonObject? body = null) =>
        (await c.PostAsync("/_matrix/client/v3/createRoom", body ?? new JsonObject())).Ok()["room_id"]!.GetValue<string>();

    /// <summary>Sends a text message and returns its event ID.</summary>
    public static async Task<string> SendTextAsync(this MatrixClient c, string roomId, string body) =>
        (await c.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = body })).Ok()["event_id"]!.GetValue<string>();

    /// <summary>Sends an event with a fresh transaction ID.</summary>
    public static Task<MatrixClient.Response> SendEventAsync(this MatrixClient c, string roomId, string type, object content, string? txnId = null) =>
        c.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/{Uri.EscapeDataString(type)}/{txnId ?? "t" + Interlocked.Increment(ref _txn)}", content);

    /// <summary>Sets a state event.</summary>
    public static Task<MatrixClient.Response> SetStateAsync(this MatrixClient c, string roomId, string type, object content, string stateKey = "") =>
        c.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/{Uri.EscapeDataString(type)}/{Uri.EscapeDataString(stateKey)}", content);

    /// <summary>Joins a room by ID or alias.</summary>
    public static async Task JoinAsync(this MatrixClient c, string roomIdOrAlias) =>
        (await c.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomIdOrAlias)}", new JsonObject())).Ok();

    /// <summary>Invites a user.</summary>
    public static async Task InviteAsync(this MatrixClient c, string roomId, string userId) =>
        (await c.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/invite", new JsonObject { ["user_id"] = userId })).Ok();

    /// <summary>Runs /sync and returns the body.</summary>
    public static async Task<JsonObject> SyncAsync(this MatrixClient c, string? since = null, int timeout = 0, string? filter = null)
    {
        var query = $"/_matrix/client/v3/sync?timeout={timeout}";
        if (since is not null)
        {
            query += "&since=" + Uri.EscapeDataString(since);
        }

        if (filter is not null)
        {
            query += "&filter=" + Uri.EscapeDataString(filter);
        }

        return (await c.GetAsync(query)).Ok();
    }

    /// <summary>The joined-room section of a sync response for a room, or null.</summary>
    public static JsonObject? JoinedRoom(this JsonObject sync, string roomId) => sync["rooms"]?["join"]?[roomId] as JsonObject;

    /// <summary>The timeline events of a room in a sync response (empty when the room is absent).</summary>
    public static JsonArray Timeline(this JsonObject sync, string roomId) => sync.JoinedRoom(roomId)?["timeline"]?["events"] as JsonArray ?? [];

    /// <summary>Bodies of the m.room.message events in an event list.</summary>
    public static List<string> Bodies(this JsonArray events) =>
        events.Where(e => e!["type"]!.GetValue<string>() == "m.room.message" && e["content"]!["body"] is not null)
            .Select(e => e!["content"]!["body"]!.GetValue<string>()).ToList();

    /// <summary>Asserts a status.</summary>
    public static void Is(this MatrixClient.Response r, HttpStatusCode status) => r.Expect(status);
}
