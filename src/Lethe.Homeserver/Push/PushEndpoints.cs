using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Push;

/// <summary>The push rules API, pushers and the notifications list.</summary>
public static class PushEndpoints
{
    /// <summary>Where a pusher's URL must point (the push gateway API's notify endpoint).</summary>
    public const string NotifyPath = "/_matrix/push/v1/notify";

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // GET /_matrix/client/v3/pushrules/
        app.MapClient("GET", "/pushrules/", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            return (await hs.Push.Rules.GetAsync(requester.UserId, ctx.RequestAborted)).ToAccountData();
        });

        // GET /_matrix/client/v3/pushrules/global/
        app.MapClient("GET", "/pushrules/{scope}/", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            Scope(ctx);
            return (await hs.Push.Rules.GetAsync(requester.UserId, ctx.RequestAborted)).Global();
        });

        // GET /_matrix/client/v3/pushrules/global/{kind}/ (kind listing, as Synapse)
        app.MapClient("GET", "/pushrules/{scope}/{kind}/", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            Scope(ctx);
            var kind = Kind(ctx);
            return new JsonArray([.. (await hs.Push.Rules.GetAsync(requester.UserId, ctx.RequestAborted)).Ordered(kind)]);
        });

        // GET/PUT/DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
        app.MapClient("GET", "/pushrules/{scope}/{kind}/{ruleId}", async ctx =>
        {
            var (userId, kind, ruleId) = await RuleAsync(ctx, hs);
            return (await hs.Push.Rules.GetAsync(userId, ctx.RequestAborted)).Get(kind, ruleId) ?? throw NoRule();
        });
        app.MapClient("PUT", "/pushrules/{scope}/{kind}/{ruleId}", async ctx =>
        {
            var (userId, kind, ruleId) = await RuleAsync(ctx, hs);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var rule = PushRuleSet.Normalise(kind, ruleId, body);
            var before = ctx.Query("before");
            var after = ctx.Query("after");
            await hs.Push.Rules.ChangeAsync(userId, set =>
            {
                set.Put(kind, ruleId, rule, before, after);
                return true;
            }, ctx.RequestAborted);
            return new JsonObject();
        });
        app.MapClient("DELETE", "/pushrules/{scope}/{kind}/{ruleId}", async ctx =>
        {
            var (userId, kind, ruleId) = await RuleAsync(ctx, hs);
            if (ruleId.StartsWith('.'))
            {
                throw DefaultPushRules.Find(ruleId) is { } d && d.Kind == kind
                    ? MatrixException.InvalidParam("Server-default rules cannot be deleted; disable them instead")
                    : NoRule();
            }

            var found = false;
            await hs.Push.Rules.ChangeAsync(userId, set => found = set.Delete(kind, ruleId), ctx.RequestAborted);
            return found ? new JsonObject() : throw NoRule();
        });

        // GET/PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
        app.MapClient("GET", "/pushrules/{scope}/{kind}/{ruleId}/enabled", async ctx =>
        {
            var (userId, kind, ruleId) = await RuleAsync(ctx, hs);
            var rule = (await hs.Push.Rules.GetAsync(userId, ctx.RequestAborted)).Get(kind, ruleId) ?? throw NoRule();
            return new JsonObject { ["enabled"] = rule["enabled"]!.DeepClone() };
        });
        app.MapClient("PUT", "/pushrules/{scope}/{kind}/{ruleId}/enabled", async ctx =>
        {
            var (userId, kind, ruleId) = await RuleAsync(ctx, hs);
            var body = await JsonBody.ReadObjectAsync(ctx);
            if (body["enabled"] is not JsonValue v || !v.TryGetValue<bool>(out var enabled))
            {
                throw MatrixException.BadJson("'enabled' must be a boolean");
            }

            var found = false;
            await hs.Push.Rules.ChangeAsync(userId, set => found = set.SetEnabled(kind, ruleId, enabled), ctx.RequestAborted);
            return found ? new JsonObject() : throw NoRule();
        });

        // GET/PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
        app.MapClient("GET", "/pushrules/{scope}/{kind}/{ruleId}/actions", async ctx =>
        {
            var (userId, kind, ruleId) = await RuleAsync(ctx, hs);
            var rule = (await hs.Push.Rules.GetAsync(userId, ctx.RequestAborted)).Get(kind, ruleId) ?? throw NoRule();
            return new JsonObject { ["actions"] = rule["actions"]!.DeepClone() };
        });
        app.MapClient("PUT", "/pushrules/{scope}/{kind}/{ruleId}/actions", async ctx =>
        {
            var (userId, kind, ruleId) = await RuleAsync(ctx, hs);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var actions = PushRuleSet.CheckActions(body["actions"]);
            var found = false;
            await hs.Push.Rules.ChangeAsync(userId, set => found = set.SetActions(kind, ruleId, actions), ctx.RequestAborted);
            return found ? new JsonObject() : throw NoRule();
        });

        // GET /_matrix/client/v3/pushers
        app.MapClient("GET", "/pushers", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var list = new JsonArray();
            foreach (var p in await hs.Push.Store.PushersOfAsync(requester.UserId, ctx.RequestAborted))
            {
                var pusher = new JsonObject
                {
                    ["pushkey"] = p.Pushkey,
                    ["kind"] = p.Kind,
                    ["app_id"] = p.AppId,
                    ["app_display_name"] = p.AppDisplayName,
                    ["device_display_name"] = p.DeviceDisplayName,
                    ["lang"] = p.Lang,
                    ["data"] = JsonNode.Parse(p.Data),
                };
                if (p.ProfileTag is not null)
                {
                    pusher["profile_tag"] = p.ProfileTag;
                }

                list.Add((JsonNode)pusher);
            }

            return new JsonObject { ["pushers"] = list };
        });

        // POST /_matrix/client/v3/pushers/set
        app.MapClient("POST", "/pushers/set", ctx => SetPusherAsync(ctx, hs));

        // GET /_matrix/client/v3/notifications
        app.MapClient("GET", "/notifications", ctx => NotificationsAsync(ctx, hs));
    }

    private static MatrixException NoRule() => MatrixException.NotFound("No such push rule");

    private static void Scope(HttpContext ctx)
    {
        if (ctx.Route("scope") != "global")
        {
            throw MatrixException.InvalidParam("The only push rule scope is 'global'");
        }
    }

    private static string Kind(HttpContext ctx)
    {
        var kind = ctx.Route("kind");
        return Array.IndexOf(PushRuleSet.Kinds, kind) >= 0 ? kind : throw MatrixException.InvalidParam("Unknown push rule kind; expected override, content, room, sender or underride");
    }

    private static async Task<(string UserId, string Kind, string RuleId)> RuleAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        Scope(ctx);
        return (requester.UserId, Kind(ctx), ctx.Route("ruleId"));
    }

    private static async ValueTask<JsonNode> SetPusherAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var body = await JsonBody.ReadObjectAsync(ctx);
        var pushkey = body.RequiredString("pushkey", 512);
        var appId = body.RequiredString("app_id", 64);
        if (!body.TryGetPropertyValue("kind", out var kindNode))
        {
            throw MatrixException.MissingParam("Missing 'kind'");
        }

        if (kindNode is null)
        {
            await hs.Push.Store.DeletePusherAsync(requester.UserId, appId, pushkey, ctx.RequestAborted);
            await hs.Push.RefreshPushUsersAsync(ctx.RequestAborted);
            return new JsonObject();
        }

        var kind = body.RequiredString("kind");
        if (kind != "http")
        {
            throw MatrixException.InvalidParam(kind == "email" ? "Email pushers are not supported" : "Unknown pusher kind; only 'http' is supported");
        }

        var data = body.OptionalObject("data") ?? throw MatrixException.MissingParam("Missing 'data'");
        if (data["url"] is not JsonValue u || !u.TryGetValue<string>(out var url))
        {
            throw MatrixException.MissingParam("An http pusher needs data.url");
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != NotifyPath
            || !string.IsNullOrEmpty(uri.UserInfo))
        {
            throw MatrixException.InvalidParam($"data.url must be an http(s) URL whose path is {NotifyPath}");
        }

        if (data["format"] is { } format && (format is not JsonValue fv || !fv.TryGetValue<string>(out var f) || f != "event_id_only"))
        {
            throw MatrixException.InvalidParam("data.format, when given, must be 'event_id_only'");
        }

        var pusher = new PusherRow
        {
            UserId = requester.UserId,
            AppId = appId,
            Pushkey = pushkey,
            Kind = kind,
            AppDisplayName = body.RequiredString("app_display_name"),
            DeviceDisplayName = body.RequiredString("device_display_name"),
            ProfileTag = body.OptionalString("profile_tag"),
            Lang = body.RequiredString("lang"),
            Data = data.ToJsonString(),
            DeviceId = requester.DeviceId,
            CreatedTs = hs.NowMs,
        };
        await hs.Push.Store.SetPusherAsync(pusher, body.OptionalBool("append", false), ctx.RequestAborted);
        await hs.Push.RefreshPushUsersAsync(ctx.RequestAborted);
        return new JsonObject();
    }

    private static async ValueTask<JsonNode> NotificationsAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var ct = ctx.RequestAborted;
        var limit = 20;
        if (ctx.Query("limit") is { } l)
        {
            limit = int.TryParse(l, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0
                ? Math.Min(n, 100) : throw MatrixException.InvalidParam("limit must be a positive integer");
        }

        var before = long.MaxValue;
        if (ctx.Query("from") is { Length: > 0 } from)
        {
            before = long.TryParse(from, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var f)
                ? f : throw MatrixException.InvalidParam("Invalid 'from' token");
        }

        var onlyHighlight = ctx.Query("only") == "highlight";
        var rooms = await hs.Notifier.RoomsOfAsync(requester.UserId, ct);
        var joined = rooms.Where(r => r.Value == Membership.Join).Select(r => r.Key).ToList();
        var ignored = await hs.IgnoredUsersAsync(requester.UserId, ct);
        var viewer = new Rooms.ClientEventFormat.Viewer(requester.UserId, requester.DeviceId);
        var notifications = new JsonArray();
        var readPositions = new Dictionary<string, long>(StringComparer.Ordinal);
        var cutoffs = new Dictionary<string, long>(StringComparer.Ordinal);
        long? next = null;
        // Scan newest first in pages until enough notifications are found for this user (or the history ends).
        for (var round = 0; round < 20 && notifications.Count < limit; round++)
        {
            var rows = await hs.Push.Store.RecentAsync(joined, requester.UserId, before, 200, ct);
            if (rows.Count == 0)
            {
                next = null;
                break;
            }

            foreach (var row in rows)
            {
                before = row.StreamOrdering;
                var outcome = row.OutcomeFor(requester.UserId);
                if ((outcome & 1) == 0 || (onlyHighlight && (outcome & 2) == 0))
                {
                    continue;
                }

                if (!cutoffs.TryGetValue(row.RoomId, out var cutoff))
                {
                    cutoff = cutoffs[row.RoomId] = (await hs.RetentionPolicies.ForRoomAsync(row.RoomId, ct)).ExpiryCutoff(hs.NowMs) ?? long.MinValue;
                }

                if (await hs.Events.GetAsync(row.EventId, ct) is not { } stored || stored.Pdu.OriginServerTs <= cutoff || ignored.Contains(stored.Pdu.Sender)
                    || await hs.Visibility.ViewAsync(requester.UserId, stored, ct) is not { } visible)
                {
                    continue;
                }

                if (!readPositions.TryGetValue(row.RoomId, out var read))
                {
                    var positions = await hs.Receipts.ReadPositionsAsync(requester.UserId, row.RoomId, ct);
                    read = positions.GetValueOrDefault("");
                    if (row.ThreadId is { } thread)
                    {
                        read = Math.Max(read, positions.GetValueOrDefault(thread));
                    }
                    else
                    {
                        read = Math.Max(read, positions.GetValueOrDefault("main"));
                    }

                    readPositions[row.RoomId] = read;
                }

                var formatted = await hs.Format.ToClientAsync(visible, viewer, includeRoomId: true, ct);
                notifications.Add((JsonNode)new JsonObject
                {
                    ["actions"] = PushActions.FromOutcome((byte)outcome),
                    ["event"] = formatted,
                    ["read"] = row.StreamOrdering <= read,
                    ["room_id"] = row.RoomId,
                    ["ts"] = stored.Row.ReceivedTs,
                });
                next = row.StreamOrdering;
                if (notifications.Count >= limit)
                {
                    break;
                }
            }
        }

        var response = new JsonObject { ["notifications"] = notifications };
        if (notifications.Count >= limit && next is { } token)
        {
            response["next_token"] = token.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return response;
    }
}
