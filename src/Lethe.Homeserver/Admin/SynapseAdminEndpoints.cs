using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Admin;

/// <summary>
/// Synapse's admin API for accounts, sessions, rooms and history purges, in Synapse's JSON shapes, so operators'
/// tools (synadm and others) work unchanged. Every endpoint needs a server admin's access token.
/// </summary>
public static class SynapseAdminEndpoints
{
    private const string V1 = "/_synapse/admin/v1";
    private const string V2 = "/_synapse/admin/v2";

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var purges = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);

        app.MapJson("GET", V1 + "/server_version", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            return new JsonObject { ["server_version"] = LetheVersion.Current };
        });

        // GET /_synapse/admin/v2/users?from=&limit=&name=&user_id=&guests=&deactivated=&order_by=&dir=
        app.MapJson("GET", V2 + "/users", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var from = QueryInt(ctx, "from", 0, 0, long.MaxValue);
            var limit = (int)QueryInt(ctx, "limit", 100, 1, 1000);
            var orderBy = ctx.Query("order_by") ?? "name";
            if (!AdminStore.IsUserOrder(orderBy))
            {
                throw MatrixException.InvalidParam("Unknown value for order_by: " + orderBy);
            }

            var (users, total) = await hs.Admin.UsersAsync(
                from, limit, ctx.Query("name"), ctx.Query("user_id"), QueryBool(ctx, "guests", true), QueryBool(ctx, "deactivated", false), orderBy, Backwards(ctx), ctx.RequestAborted);
            var result = new JsonObject { ["users"] = new JsonArray(users.Select(u => (JsonNode)UserJson(u)).ToArray()), ["total"] = total };
            if (from + users.Count < total)
            {
                result["next_token"] = (from + users.Count).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return result;
        });

        // GET /_synapse/admin/v2/users/{userId}
        app.MapJson("GET", V2 + "/users/{userId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            return UserDetails(await hs.Admin.UserAsync(LocalUser(ctx, hs), ctx.RequestAborted) ?? throw MatrixException.NotFound("User not found"));
        });

        // PUT /_synapse/admin/v2/users/{userId}: create the account, or change it.
        app.MapJson("PUT", V2 + "/users/{userId}", ResourceGroup.Client, async ctx => await PutUserAsync(ctx, hs));

        // POST /_synapse/admin/v1/deactivate/{userId} {"erase": bool}
        app.MapJson("POST", V1 + "/deactivate/{userId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var userId = LocalUser(ctx, hs);
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            var erase = body.OptionalBool("erase", false);
            if (!await hs.Users.ExistsAsync(userId, ctx.RequestAborted))
            {
                throw MatrixException.NotFound("User not found");
            }

            if (erase)
            {
                await hs.Erasure.EraseAsync(userId, ctx.RequestAborted);
            }
            else
            {
                await AccountEndpoints.DeactivateAsync(hs, userId, ctx.RequestAborted);
            }

            return new JsonObject { ["id_server_unbind_result"] = "success" };
        });

        // GET /_synapse/admin/v1/users/{userId}/joined_rooms
        app.MapJson("GET", V1 + "/users/{userId}/joined_rooms", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var rooms = await hs.StateStore.RoomsForUserAsync(LocalUser(ctx, hs), [Membership.Join], ctx.RequestAborted);
            return new JsonObject { ["joined_rooms"] = new JsonArray(rooms.Select(r => (JsonNode)r.RoomId).ToArray()), ["total"] = rooms.Count };
        });

        // POST /_synapse/admin/v1/send_server_notice and PUT .../send_server_notice/{txnId}: {"user_id", "content", "type"?, "state_key"?}
        JsonEndpoint notice = async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var userId = body.RequiredString("user_id");
            if (!UserId.TryParse(userId, out var parsed) || parsed.Server.Value != hs.ServerName)
            {
                throw MatrixException.InvalidParam("Server notices can only be sent to local users");
            }

            var content = body.OptionalObject("content") ?? throw MatrixException.MissingParam("content is required");
            if (await hs.Admin.UserAsync(userId, ctx.RequestAborted) is not { Deactivated: false })
            {
                throw MatrixException.NotFound("User not found");
            }

            var txnId = ctx.Request.RouteValues["txnId"] as string;
            var eventId = await hs.ServerNotices.SendAsync(
                userId, body.OptionalString("type") ?? EventTypes.Message, body.OptionalString("state_key"), content, txnId, ctx.RequestAborted);
            return new JsonObject { ["event_id"] = eventId };
        };
        app.MapJson("POST", V1 + "/send_server_notice", ResourceGroup.Client, notice);
        app.MapJson("PUT", V1 + "/send_server_notice/{txnId}", ResourceGroup.Client, notice);

        // GET /_synapse/admin/v1/whois/{userId}: devices with their last connection (the only one Lethe keeps).
        app.MapJson("GET", V1 + "/whois/{userId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var userId = LocalUser(ctx, hs);
            await hs.Activity.FlushAsync(ctx.RequestAborted);
            var devices = new JsonObject();
            foreach (var d in await hs.Devices.ListAsync(userId, ctx.RequestAborted))
            {
                var connections = new JsonArray();
                if (d.LastSeenTs is { } seen)
                {
                    connections.Add((JsonNode)new JsonObject { ["ip"] = d.LastSeenIp, ["last_seen"] = seen, ["user_agent"] = d.LastSeenUserAgent });
                }

                devices[d.DeviceId] = new JsonObject { ["sessions"] = new JsonArray(new JsonObject { ["connections"] = connections }) };
            }

            return new JsonObject { ["user_id"] = userId, ["devices"] = devices };
        });

        // GET /_synapse/admin/v1/rooms?from=&limit=&order_by=&dir=&search_term=
        app.MapJson("GET", V1 + "/rooms", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var from = (int)QueryInt(ctx, "from", 0, 0, int.MaxValue);
            var limit = (int)QueryInt(ctx, "limit", 100, 1, 1000);
            var orderBy = ctx.Query("order_by") ?? "name";
            var term = ctx.Query("search_term");
            var rooms = new List<JsonObject>();
            foreach (var record in await hs.Admin.RoomsAsync(ctx.RequestAborted))
            {
                if (await RoomJsonAsync(hs, record, ctx.RequestAborted) is { } room && Matches(room, term))
                {
                    rooms.Add(room);
                }
            }

            if (rooms.Count > 0 && !rooms[0].ContainsKey(orderBy))
            {
                throw MatrixException.InvalidParam("Unknown value for order_by: " + orderBy);
            }

            var sorted = rooms.OrderBy(r => r[orderBy] is JsonValue v ? v.ToJsonString() : "", StringComparer.Ordinal).ThenBy(r => r["room_id"]!.GetValue<string>(), StringComparer.Ordinal).ToList();
            if (orderBy is "joined_members" or "joined_local_members" or "state_events")
            {
                // Synapse lists the biggest rooms first for counts.
                sorted = [.. rooms.OrderByDescending(r => r[orderBy]!.GetValue<long>()).ThenBy(r => r["room_id"]!.GetValue<string>(), StringComparer.Ordinal)];
            }

            if (Backwards(ctx))
            {
                sorted.Reverse();
            }

            var page = sorted.Skip(from).Take(limit).ToList();
            var result = new JsonObject
            {
                ["rooms"] = new JsonArray(page.Select(r => (JsonNode)r).ToArray()),
                ["offset"] = from,
                ["total_rooms"] = sorted.Count,
            };
            if (from + page.Count < sorted.Count)
            {
                result["next_batch"] = from + page.Count;
            }

            if (from > 0)
            {
                result["prev_batch"] = Math.Max(0, from - limit);
            }

            return result;
        });

        // GET /_synapse/admin/v1/rooms/{roomId}
        app.MapJson("GET", V1 + "/rooms/{roomId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var record = await hs.RoomStore.GetAsync(ctx.Route("roomId"), ctx.RequestAborted) ?? throw MatrixException.NotFound("Room not found");
            return await RoomJsonAsync(hs, record, ctx.RequestAborted) ?? throw MatrixException.NotFound("Room not found");
        });

        // DELETE /_synapse/admin/v2/rooms/{roomId} {"purge": true, "force_purge": false}: local members leave, then (with purge)
        // the room is deleted. Messages the room's min_lifetime still holds stay until the hold ends (the deletion then
        // finishes by itself; status "purging" with held_until_ts meanwhile), unless force_purge overrides the hold.
        var deletions = new ConcurrentDictionary<string, RoomDeletion>(StringComparer.Ordinal);
        app.MapJson("DELETE", V2 + "/rooms/{roomId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var roomId = ctx.Route("roomId");
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            if (body.OptionalString("new_room_user_id") is not null || body.OptionalBool("block", false))
            {
                throw MatrixException.InvalidParam("new_room_user_id and block are not supported by this server");
            }

            if (await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Room not found");
            }

            var purge = body.OptionalBool("purge", true);
            var force = body.OptionalBool("force_purge", false);
            var deleteId = Convert.ToHexStringLower(SecureRandom.Bytes(8));
            deletions[deleteId] = new RoomDeletion(roomId, purge ? "purging" : "shutting_down");
            _ = Task.Run(async () =>
            {
                try
                {
                    var complete = true;
                    // What the deletion did is read from the room before and after: who was made to leave (or could
                    // not be), and which aliases went with it.
                    var local = await LocalMembersAsync(hs, roomId);
                    var aliases = await hs.RoomStore.AliasesAsync(roomId, CancellationToken.None);
                    if (purge)
                    {
                        complete = (await hs.RoomPurge.ShutDownAndPurgeAsync(roomId, force, CancellationToken.None)).Complete;
                    }
                    else
                    {
                        await hs.RoomPurge.ShutDownAsync(roomId, CancellationToken.None);
                    }

                    var remaining = await LocalMembersAsync(hs, roomId);
                    var kept = await hs.RoomStore.AliasesAsync(roomId, CancellationToken.None);
                    deletions[deleteId] = new RoomDeletion(roomId, complete ? "complete" : Held)
                    {
                        KickedUsers = [.. local.Where(u => !remaining.Contains(u)).Order(StringComparer.Ordinal)],
                        FailedToKickUsers = [.. local.Where(remaining.Contains).Order(StringComparer.Ordinal)],
                        LocalAliases = [.. aliases.Where(a => !kept.Contains(a)).Order(StringComparer.Ordinal)],
                    };
                }
                catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or ObjectDisposedException or MatrixException)
                {
                    deletions[deleteId] = new RoomDeletion(roomId, "failed") { Error = ex is MatrixException ? ex.Message : "The room could not be deleted; see the server's log" };
                }
            });
            return new JsonObject { ["delete_id"] = deleteId };
        });

        // GET /_synapse/admin/v2/rooms/delete_status/{deleteId} and GET /_synapse/admin/v2/rooms/{roomId}/delete_status
        app.MapJson("GET", V2 + "/rooms/delete_status/{deleteId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            return deletions.TryGetValue(ctx.Route("deleteId"), out var d)
                ? await DeleteStatusAsync(hs, d, null, ctx.RequestAborted)
                : throw MatrixException.NotFound("delete id not found");
        });
        app.MapJson("GET", V2 + "/rooms/{roomId}/delete_status", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var roomId = ctx.Route("roomId");
            var found = new JsonArray();
            foreach (var (id, d) in deletions.Where(kv => kv.Value.RoomId == roomId))
            {
                var status = await DeleteStatusAsync(hs, d, id, ctx.RequestAborted);
                found.Add((JsonNode)status);
            }

            return found.Count > 0 ? new JsonObject { ["results"] = found } : throw MatrixException.NotFound("No delete task for this room");
        });

        // GET /_synapse/admin/v1/room/{roomId}/media: the media the room's (unencrypted) events name.
        app.MapJson("GET", V1 + "/room/{roomId}/media", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var roomId = ctx.Route("roomId");
            if (await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Room not found");
            }

            var local = await hs.Admin.RoomMediaAsync(roomId, ctx.RequestAborted);
            return new JsonObject
            {
                ["local"] = new JsonArray(local.Select(id => (JsonNode)$"mxc://{hs.ServerName}/{id}").ToArray()),
                ["remote"] = new JsonArray(),
            };
        });

        // GET /_synapse/admin/v1/rooms/{roomId}/members
        app.MapJson("GET", V1 + "/rooms/{roomId}/members", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var snap = await hs.Snapshots.GetAsync(ctx.Route("roomId"), ctx.RequestAborted) ?? throw MatrixException.NotFound("Room not found");
            var members = snap.Memberships.Where(m => m.Value == Membership.Join).Select(m => m.Key).Order(StringComparer.Ordinal).ToList();
            return new JsonObject { ["members"] = new JsonArray(members.Select(m => (JsonNode)m).ToArray()), ["total"] = members.Count };
        });

        // POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}] {"purge_up_to_event_id" | "purge_up_to_ts", "delete_local_events"}
        JsonEndpoint purge = async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var roomId = ctx.Route("roomId");
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            if (await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Room not found");
            }

            var eventId = ctx.Request.RouteValues["eventId"] as string ?? body.OptionalString("purge_up_to_event_id");
            var upToTs = body.OptionalInteger("purge_up_to_ts", 0);
            long beforeStream = long.MaxValue;
            if (eventId is not null)
            {
                var e = await hs.Events.GetAsync(eventId, ctx.RequestAborted);
                if (e is null || e.Row.RoomId != roomId)
                {
                    throw MatrixException.NotFound("Event not found in this room");
                }

                beforeStream = e.StreamOrdering;
            }
            else if (upToTs is null)
            {
                throw MatrixException.Of(400, ErrCode.Unknown, "must specify purge_up_to_event_id or purge_up_to_ts");
            }

            var deleteLocal = body.OptionalBool("delete_local_events", false);
            var purgeId = Convert.ToHexStringLower(SecureRandom.Bytes(8));
            purges[purgeId] = "active";
            _ = Task.Run(async () =>
            {
                try
                {
                    await PurgeHistoryAsync(hs, roomId, beforeStream, upToTs ?? long.MaxValue, deleteLocal, CancellationToken.None);
                    purges[purgeId] = "complete";
                }
                catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or ObjectDisposedException)
                {
                    purges[purgeId] = "failed";
                }
            });
            return new JsonObject { ["purge_id"] = purgeId };
        };
        app.MapJson("POST", V1 + "/purge_history/{roomId}", ResourceGroup.Client, purge);
        app.MapJson("POST", V1 + "/purge_history/{roomId}/{eventId}", ResourceGroup.Client, purge);

        // GET /_synapse/admin/v1/purge_history_status/{purgeId}
        app.MapJson("GET", V1 + "/purge_history_status/{purgeId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            return purges.TryGetValue(ctx.Route("purgeId"), out var status)
                ? new JsonObject { ["status"] = status }
                : throw MatrixException.NotFound("purge id not found");
        });
    }

    /// <summary>A deletion held back by min_lifetime: "purging" until the held-deletion job has deleted the room.</summary>
    private const string Held = "held";

    private static async Task<JsonObject> DeleteStatusAsync(HomeserverServices hs, RoomDeletion deletion, string? deleteId, CancellationToken ct)
    {
        var result = deletion.ToJson(deleteId);
        if (deletion.Status == Held)
        {
            var heldUntil = await hs.Jobs.NextRunAsync(Retention.LegalHolds.RoomJobPrefix + deletion.RoomId, ct);
            result["status"] = heldUntil is null ? "complete" : "purging";
            if (heldUntil is not null)
            {
                result["held_until_ts"] = heldUntil;
            }
        }

        return result;
    }

    /// <summary>
    /// Deletes a room's non-state events before the given point with the same guarantees as retention: never the
    /// room's newest events, never what the room's <c>min_lifetime</c> still holds, the database compacted afterwards.
    /// Local users' events stay unless <paramref name="deleteLocal"/>, as in Synapse.
    /// </summary>
    private static async Task PurgeHistoryAsync(HomeserverServices hs, string roomId, long beforeStream, long beforeTs, bool deleteLocal, CancellationToken ct)
    {
        var policy = await hs.RetentionPolicies.ForRoomAsync(roomId, ct);
        if (policy.MinLifetime is { } min)
        {
            beforeTs = Math.Min(beforeTs, hs.NowMs - min + 1);
        }

        long purged = 0;
        while (true)
        {
            var batch = await hs.Admin.HistoryBatchAsync(roomId, beforeStream, beforeTs, deleteLocal ? null : ":" + hs.ServerName, hs.Config.Retention.PurgeBatchSize, ct);
            if (batch.Count == 0)
            {
                break;
            }

            purged += await hs.RoomPurge.DeleteEventsAsync(roomId, batch, ct);
        }

        if (purged > 0)
        {
            await hs.Database.CompactAfterDeleteAsync(ct);
        }
    }

    private static async Task<JsonNode> PutUserAsync(HttpContext ctx, HomeserverServices hs)
    {
        var admin = await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
        var userId = LocalUser(ctx, hs);
        var body = await JsonBody.ReadObjectAsync(ctx);
        var password = body.OptionalString("password", 512);
        var displayname = body.ContainsKey("displayname") ? body.OptionalString("displayname", 256) : null;
        var avatarUrl = body.ContainsKey("avatar_url") ? body.OptionalString("avatar_url", 1024) : null;
        bool? makeAdmin = body.ContainsKey("admin") ? body.OptionalBool("admin", false) : null;
        bool? deactivated = body.ContainsKey("deactivated") ? body.OptionalBool("deactivated", false) : null;
        var logoutDevices = body.OptionalBool("logout_devices", true);
        foreach (var unsupported in new[] { "threepids", "external_ids" })
        {
            if (body.OptionalArray(unsupported) is { Count: > 0 })
            {
                throw MatrixException.InvalidParam(unsupported + " are not supported by this server");
            }
        }

        var existing = await hs.Admin.UserAsync(userId, ctx.RequestAborted);
        var ct = ctx.RequestAborted;
        if (existing is null)
        {
            var localpart = userId[1..userId.IndexOf(':', StringComparison.Ordinal)];
            if (!UserId.IsValidLocalpart(localpart))
            {
                throw MatrixException.Of(400, ErrCode.InvalidUsername, "User ID may only contain a-z, 0-9, and . _ = - / +");
            }

            var hash = password is null ? null : await hs.Hasher.HashAsync(password, ct);
            await hs.Database.WriteAsync(async tx =>
            {
                if (!await UserStore.TryCreateAsync(tx, new UserRecord { UserId = userId, PasswordHash = hash, IsAdmin = makeAdmin ?? false, CreatedTs = hs.NowMs, UserType = body.OptionalString("user_type", 64) }))
                {
                    throw MatrixException.Of(400, ErrCode.UserInUse, "User ID already taken");
                }

                await ProfileStore.CreateAsync(tx, userId, displayname ?? localpart);
            }, ct);
            if (avatarUrl is not null)
            {
                await hs.Profiles.SetAvatarUrlAsync(userId, avatarUrl, ct);
            }

            ctx.Response.StatusCode = 201;
            return UserDetails((await hs.Admin.UserAsync(userId, ct))!);
        }

        if (existing.Erased && (deactivated == false || password is not null))
        {
            // Within erase_delay, reactivating (with a new password) cancels the erasure; after it, the account is gone for good.
            if (deactivated != false || password is null || !await hs.Erasure.CancelAsync(userId, ct))
            {
                throw MatrixException.Forbidden("This account was erased and cannot be used again");
            }
        }

        if (deactivated == true && !existing.Deactivated)
        {
            await AccountEndpoints.DeactivateAsync(hs, userId, ct);
        }
        else if (deactivated == false && existing.Deactivated)
        {
            var hash = password is null ? throw MatrixException.MissingParam("Reactivating an account needs a password") : await hs.Hasher.HashAsync(password, ct);
            await hs.Admin.ReactivateAsync(userId, hash, ct);
        }
        else if (password is not null)
        {
            await hs.Users.SetPasswordHashAsync(userId, await hs.Hasher.HashAsync(password, ct), ct);
            if (logoutDevices)
            {
                var devices = await hs.Devices.ListAsync(userId, ct);
                await AccountEndpoints.DeleteDevicesAsync(hs, userId, devices.Select(d => d.DeviceId), ct);
            }
        }

        if (makeAdmin is { } isAdmin)
        {
            if (!isAdmin && userId == admin.UserId)
            {
                throw MatrixException.InvalidParam("You may not demote yourself");
            }

            await hs.Users.SetAdminAsync(userId, isAdmin, ct);
        }

        if (body.ContainsKey("displayname") || body.ContainsKey("avatar_url"))
        {
            if (body.ContainsKey("displayname"))
            {
                await hs.Profiles.SetDisplaynameAsync(userId, string.IsNullOrEmpty(displayname) ? null : displayname, ct);
            }

            if (body.ContainsKey("avatar_url"))
            {
                await hs.Profiles.SetAvatarUrlAsync(userId, string.IsNullOrEmpty(avatarUrl) ? null : avatarUrl, ct);
            }

            await hs.Memberships.PropagateProfileAsync(userId, ct);
        }

        return UserDetails((await hs.Admin.UserAsync(userId, ct))!);
    }

    private static async Task<JsonObject?> RoomJsonAsync(HomeserverServices hs, RoomRecord record, CancellationToken ct)
    {
        if (await hs.Snapshots.GetAsync(record.RoomId, ct) is not { } snap)
        {
            return null;
        }

        async Task<JsonObject?> ContentAsync(string type) =>
            snap.StateEventId(type) is { } id && await hs.Events.GetAsync(id, ct) is { } e && !e.IsRedacted ? e.Pdu.Content : null;

        var create = await ContentAsync(EventTypes.Create);
        var joined = snap.Memberships.Where(m => m.Value == Membership.Join).Select(m => m.Key).ToList();
        var localSuffix = ":" + hs.ServerName;
        return new JsonObject
        {
            ["room_id"] = record.RoomId,
            ["name"] = (await ContentAsync(EventTypes.Name))?.GetString("name"),
            ["topic"] = (await ContentAsync(EventTypes.Topic))?.GetString("topic"),
            ["avatar"] = (await ContentAsync("m.room.avatar"))?.GetString("url"),
            ["canonical_alias"] = (await ContentAsync(EventTypes.CanonicalAlias))?.GetString("alias"),
            ["joined_members"] = joined.Count,
            ["joined_local_members"] = joined.Count(u => u.EndsWith(localSuffix, StringComparison.Ordinal)),
            ["version"] = record.RoomVersion,
            ["creator"] = record.Creator,
            ["encryption"] = (await ContentAsync(EventTypes.Encryption))?.GetString("algorithm"),
            ["federatable"] = create?["m.federate"] is not JsonValue federate || federate.GetValueKind() != System.Text.Json.JsonValueKind.False,
            ["public"] = record.IsPublic,
            ["join_rules"] = (await ContentAsync(EventTypes.JoinRules))?.GetString("join_rule"),
            ["guest_access"] = (await ContentAsync(EventTypes.GuestAccess))?.GetString("guest_access"),
            ["history_visibility"] = (await ContentAsync(EventTypes.HistoryVisibility))?.GetString("history_visibility"),
            ["state_events"] = snap.State.Count,
            ["room_type"] = create?.GetString("type"),
        };
    }

    /// <summary>The local users joined to, invited to or knocking on a room (none once it is deleted).</summary>
    private static async Task<HashSet<string>> LocalMembersAsync(HomeserverServices hs, string roomId)
    {
        var local = ":" + hs.ServerName;
        var snap = await hs.Snapshots.GetAsync(roomId, CancellationToken.None);
        return snap is null
            ? []
            : [.. snap.Memberships.Where(m => m.Key.EndsWith(local, StringComparison.Ordinal) && m.Value is Membership.Join or Membership.Invite or Membership.Knock).Select(m => m.Key)];
    }

    /// <summary>A room deletion's status and, once complete, what it did (Synapse's <c>shutdown_room</c>).</summary>
    private sealed record RoomDeletion(string RoomId, string Status)
    {
        public IReadOnlyList<string> KickedUsers { get; init; } = [];

        public IReadOnlyList<string> FailedToKickUsers { get; init; } = [];

        public IReadOnlyList<string> LocalAliases { get; init; } = [];

        public string? Error { get; init; }

        public JsonObject ToJson(string? deleteId)
        {
            var json = new JsonObject();
            if (deleteId is not null)
            {
                json["delete_id"] = deleteId;
            }

            json["status"] = Status;
            if (Error is not null)
            {
                json["error"] = Error;
            }

            json["shutdown_room"] = new JsonObject
            {
                ["kicked_users"] = new JsonArray([.. KickedUsers.Select(u => (JsonNode)u)]),
                ["failed_to_kick_users"] = new JsonArray([.. FailedToKickUsers.Select(u => (JsonNode)u)]),
                ["local_aliases"] = new JsonArray([.. LocalAliases.Select(a => (JsonNode)a)]),
                ["new_room_id"] = null,
            };
            return json;
        }
    }

    private static bool Matches(JsonObject room, string? term) =>
        term is null || new[] { "name", "canonical_alias", "room_id" }.Any(k => room[k] is JsonValue v && v.GetValue<string>().Contains(term, StringComparison.OrdinalIgnoreCase));

    private static JsonObject UserJson(AdminUserRow u) => new()
    {
        ["name"] = u.UserId,
        ["user_type"] = u.UserType,
        ["is_guest"] = u.IsGuest,
        ["admin"] = u.IsAdmin,
        ["deactivated"] = u.Deactivated,
        ["erased"] = u.Erased,
        ["shadow_banned"] = false,
        ["locked"] = false,
        ["displayname"] = u.Displayname,
        ["avatar_url"] = u.AvatarUrl,
        ["creation_ts"] = u.CreatedTs,
        ["appservice_id"] = u.AppserviceId,
    };

    private static JsonObject UserDetails(AdminUserRow u)
    {
        var json = UserJson(u);
        json["threepids"] = new JsonArray();
        json["external_ids"] = new JsonArray();
        return json;
    }

    private static string LocalUser(HttpContext ctx, HomeserverServices hs)
    {
        var userId = ctx.Route("userId");
        if (!UserId.TryParse(userId, out var parsed))
        {
            throw MatrixException.InvalidParam("Not a valid user ID");
        }

        return parsed.Server.Value == hs.ServerName ? userId : throw MatrixException.InvalidParam("Can only look up local users");
    }

    internal static long QueryInt(HttpContext ctx, string name, long fallback, long min, long max)
    {
        var text = ctx.Query(name);
        if (text is null)
        {
            return fallback;
        }

        return long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw MatrixException.InvalidParam($"{name} must be an integer from {min} to {max}");
    }

    private static bool QueryBool(HttpContext ctx, string name, bool fallback) =>
        ctx.Query(name) switch
        {
            null => fallback,
            "true" => true,
            "false" => false,
            _ => throw MatrixException.InvalidParam(name + " must be true or false"),
        };

    private static bool Backwards(HttpContext ctx) =>
        ctx.Query("dir") switch
        {
            null or "f" => false,
            "b" => true,
            _ => throw MatrixException.InvalidParam("dir must be f or b"),
        };
}
