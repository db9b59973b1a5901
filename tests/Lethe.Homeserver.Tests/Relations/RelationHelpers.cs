using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Relations;

/// <summary>Sending related events and reading relations, as a client would.</summary>
public static class RelationHelpers
{
    /// <summary>Sends a text reply in the thread rooted at <paramref name="rootId"/> and returns its event ID.</summary>
    public static async Task<string> ReplyInThreadAsync(this MatrixClient c, string roomId, string rootId, string body) =>
        (await c.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = body,
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = rootId, ["is_falling_back"] = true },
        })).Ok()["event_id"]!.GetValue<string>();

    /// <summary>Reacts to an event and returns the reaction's event ID.</summary>
    public static async Task<string> ReactAsync(this MatrixClient c, string roomId, string targetId, string key) =>
        (await c.SendEventAsync(roomId, "m.reaction", new JsonObject
        {
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.annotation", ["event_id"] = targetId, ["key"] = key },
        })).Ok()["event_id"]!.GetValue<string>();

    /// <summary>Sends an edit of a text message and returns the edit's event ID.</summary>
    public static async Task<string> EditAsync(this MatrixClient c, string roomId, string targetId, string newBody, string type = "m.room.message") =>
        (await c.SendEventAsync(roomId, type, new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = "* " + newBody,
            ["m.new_content"] = new JsonObject { ["msgtype"] = "m.text", ["body"] = newBody },
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.replace", ["event_id"] = targetId },
        })).Ok()["event_id"]!.GetValue<string>();

    /// <summary>Sends an event referencing another and returns its ID.</summary>
    public static async Task<string> ReferenceAsync(this MatrixClient c, string roomId, string targetId) =>
        (await c.SendEventAsync(roomId, "m.key.verification.done", new JsonObject
        {
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.reference", ["event_id"] = targetId },
        })).Ok()["event_id"]!.GetValue<string>();

    /// <summary>GET /relations (v1) with an optional path suffix (<c>/relType[/eventType]</c>) and query.</summary>
    public static Task<MatrixClient.Response> RelationsAsync(this MatrixClient c, string roomId, string eventId, string suffix = "", string query = "") =>
        c.GetAsync($"/_matrix/client/v1/rooms/{Uri.EscapeDataString(roomId)}/relations/{Uri.EscapeDataString(eventId)}{suffix}{(query.Length > 0 ? "?" + query : "")}");

    /// <summary>GET /rooms/{roomId}/event/{eventId}, asserting success.</summary>
    public static async Task<JsonObject> EventAsync(this MatrixClient c, string roomId, string eventId) =>
        (await c.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/event/{Uri.EscapeDataString(eventId)}")).Ok();

    /// <summary>Redacts an event, asserting success.</summary>
    public static async Task RedactAsync(this MatrixClient c, string roomId, string eventId) =>
        (await c.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/redact/{Uri.EscapeDataString(eventId)}/r{Guid.NewGuid():N}", new JsonObject())).Ok();

    /// <summary>Ignores users (m.ignored_user_list).</summary>
    public static async Task IgnoreAsync(this MatrixClient c, params string[] users)
    {
        var ignored = new JsonObject();
        foreach (var u in users)
        {
            ignored[u] = new JsonObject();
        }

        (await c.PutAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(c.UserId)}/account_data/m.ignored_user_list", new JsonObject { ["ignored_users"] = ignored })).Ok();
    }

    /// <summary>The event IDs of a chunk.</summary>
    public static List<string> Ids(this JsonNode? chunk) => chunk!.AsArray().Select(e => e!["event_id"]!.GetValue<string>()).ToList();

    /// <summary>The <c>unsigned.m.relations</c> of a served event, or null.</summary>
    public static JsonObject? Relations(this JsonNode e) => e["unsigned"]?["m.relations"] as JsonObject;

    /// <summary>The event with the given ID in a list of served events.</summary>
    public static JsonObject Find(this JsonNode? events, string eventId) =>
        (JsonObject)events!.AsArray().Single(e => e!["event_id"]!.GetValue<string>() == eventId)!;

    /// <summary>Sets the room's history visibility.</summary>
    public static async Task SetHistoryVisibilityAsync(this MatrixClient c, string roomId, string visibility) =>
        (await c.SetStateAsync(roomId, "m.room.history_visibility", new JsonObject { ["history_visibility"] = visibility })).Ok();

    /// <summary>Leaves a room.</summary>
    public static async Task LeaveAsync(this MatrixClient c, string roomId) =>
        (await c.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/leave", new JsonObject())).Ok();

    /// <summary>A public room (anyone may join) created by <paramref name="c"/>.</summary>
    public static Task<string> CreatePublicRoomAsync(this MatrixClient c) => c.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
}
