using System.Text.Json.Nodes;
using Lethe.Homeserver.AccountData;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Admin;

/// <summary>
/// Server notices (Synapse's <c>server_notices</c>): messages from a system user to one local user, in a private room
/// tagged <c>m.server_notice</c> where the user cannot write (power level -10). The room is created on the first notice,
/// and again if the user left it.
/// </summary>
public sealed class ServerNotices(HomeserverServices hs)
{
    private readonly SemaphoreSlim _creating = new(1, 1);

    /// <summary>The system user's ID, or null when server notices are not configured.</summary>
    public string? SystemUserId => hs.Config.ServerNotices is { } c ? $"@{c.SystemMxidLocalpart}:{hs.ServerName}" : null;

    /// <summary>Sends a notice (an event of <paramref name="type"/>, by default a message) to a local user; returns the event ID.</summary>
    public async Task<string> SendAsync(string userId, string type, string? stateKey, JsonObject content, string? txnId, CancellationToken ct)
    {
        var config = hs.Config.ServerNotices ?? throw MatrixException.Of(400, ErrCode.Unknown, "Server notices are not enabled on this server");
        var system = SystemUserId!;
        var roomId = await RoomForAsync(userId, config, system, ct);
        var e = await hs.Pipeline.SendAsync(new LocalEvent(roomId, system, type, stateKey, (JsonObject)content.DeepClone())
        {
            SenderDevice = txnId is null ? null : "server_notices",
            TxnScope = txnId is null ? null : "server_notice",
            TxnId = txnId,
        }, ct);
        return e.EventId;
    }

    private async Task<string> RoomForAsync(string userId, ServerNoticesConfig config, string system, CancellationToken ct)
    {
        await _creating.WaitAsync(ct);
        try
        {
            if (await hs.Admin.NoticeRoomAsync(userId, ct) is { } existing
                && await hs.Snapshots.GetAsync(existing, ct) is { } snap
                && snap.MembershipOf(userId) is Membership.Join or Membership.Invite
                && snap.MembershipOf(system) == Membership.Join)
            {
                return existing;
            }

            await EnsureSystemUserAsync(config, system, ct);
            var creator = new Requester(system, "", "", IsAdmin: false, IsGuest: false);
            var body = new JsonObject
            {
                ["preset"] = "private_chat",
                ["name"] = config.RoomName,
                ["invite"] = new JsonArray(userId),
                ["power_level_content_override"] = new JsonObject { ["users_default"] = -10 },
            };
            if (config.RoomTopic is { } topic)
            {
                body["topic"] = topic;
            }

            if (config.RoomAvatarUrl is { } avatar)
            {
                body["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.avatar", ["state_key"] = "", ["content"] = new JsonObject { ["url"] = avatar } });
            }

            var roomId = await hs.Creation.CreateAsync(creator, body, ct);
            await hs.Admin.SetNoticeRoomAsync(userId, roomId, hs.NowMs, ct);
            var tags = await hs.AccountData.GetAsync(userId, roomId, "m.tag", ct) is { } raw ? AccountDataJson.Parse(raw)["tags"]?.AsObject() ?? [] : new JsonObject();
            tags["m.server_notice"] = new JsonObject();
            await AccountDataEndpoints.SetRawAsync(hs, userId, roomId, "m.tag", new JsonObject { ["tags"] = tags.DeepClone() }, ct);
            if (config.AutoJoin)
            {
                await hs.Memberships.ChangeAsync(new Requester(userId, "", "", IsAdmin: false, IsGuest: false), roomId, userId, Membership.Join, null, null, ct);
            }

            return roomId;
        }
        finally
        {
            _creating.Release();
        }
    }

    /// <summary>Creates the system user the first time: no password (nobody can log in as it), a support account (not in the user directory).</summary>
    private async Task EnsureSystemUserAsync(ServerNoticesConfig config, string system, CancellationToken ct)
    {
        if (await hs.Users.ExistsAsync(system, ct))
        {
            return;
        }

        await hs.Database.WriteAsync(async tx =>
        {
            if (await UserStore.TryCreateAsync(tx, new UserRecord { UserId = system, UserType = "support", CreatedTs = hs.NowMs }))
            {
                await ProfileStore.CreateAsync(tx, system, config.SystemMxidDisplayName);
            }
        }, ct);
        if (config.SystemMxidAvatarUrl is { } avatar)
        {
            await hs.Profiles.SetAvatarUrlAsync(system, avatar, ct);
        }
    }
}
