using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Privacy;

/// <summary>
/// A full export of what the server holds about one user (data portability), in the layout docs/export.md documents:
/// <c>user.json</c> (account, profile, devices without secrets, account data, push rules and pushers, consent,
/// presence, filters, receipts, reports made, public E2EE keys, rooms), <c>sent_events.jsonl</c> (every
/// event they sent that is still kept), <c>sent_messages.csv</c>, <c>media.jsonl</c> and <c>media/…</c> (their
/// uploads), and <c>rooms/…/timeline.jsonl</c> (each room's timeline as they may see it). Everything is streamed a page at a time, so memory stays flat as history grows.
/// </summary>
public sealed class UserExport(HomeserverServices hs)
{
    /// <summary>The format identifier written into <c>user.json</c>.</summary>
    public const string Format = "lethe.export.v1";

    private const int PageSize = 500;

    /// <summary>Where the export's files go: a folder, or entries of a zip archive.</summary>
    public interface ISink
    {
        /// <summary>Opens a new file of the export for writing.</summary>
        Stream Create(string path);
    }

    /// <summary>Writes the export into a folder.</summary>
    public sealed class FolderSink(string root) : ISink
    {
        /// <inheritdoc />
        public Stream Create(string path)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            return File.Create(full);
        }
    }

    /// <summary>Writes the export as a zip archive onto a stream (which need not be seekable, e.g. an HTTP response).</summary>
    public sealed class ZipSink(ZipArchive archive) : ISink
    {
        /// <inheritdoc />
        public Stream Create(string path) => archive.CreateEntry(path, CompressionLevel.Fastest).Open();
    }

    /// <summary>Writes the export of <paramref name="userId"/>; returns the number of sent events exported.</summary>
    public async Task<long> WriteAsync(string userId, ISink sink, CancellationToken ct)
    {
        var rooms = await hs.StateStore.RoomsForUserAsync(userId, ["join", "invite", "leave", "ban", "knock"], ct);
        var roomFiles = rooms.ToDictionary(r => r.RoomId, r => "rooms/" + SafeName(r.RoomId) + "/timeline.jsonl", StringComparer.Ordinal);
        await using (var stream = sink.Create("user.json"))
        {
            var json = await UserJsonAsync(userId, rooms, roomFiles, ct);
            await using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteTo(writer);
        }

        var sent = await WriteSentAsync(userId, sink, ct);
        await WriteMediaAsync(userId, sink, ct);
        foreach (var (roomId, _) in rooms)
        {
            await WriteTimelineAsync(userId, roomId, sink, roomFiles[roomId], ct);
        }

        return sent;
    }

    private async Task<JsonObject> UserJsonAsync(string userId, List<(string RoomId, string Membership)> rooms, Dictionary<string, string> roomFiles, CancellationToken ct)
    {
        var account = await hs.Admin.UserAsync(userId, ct) ?? throw Http.MatrixException.NotFound("User not found");
        var profile = await hs.Profiles.GetAsync(userId, ct);
        await hs.Activity.FlushAsync(ct);
        var devices = new JsonArray();
        foreach (var d in await hs.Devices.ListAsync(userId, ct))
        {
            devices.Add((JsonNode)DeviceJson(d));
        }

        var global = new JsonObject();
        var perRoom = new JsonObject();
        foreach (var row in await hs.Privacy.AccountDataAsync(userId, ct))
        {
            // Account data is the client's JSON, floats included (room tag order), not canonical event JSON.
            var content = JsonNode.Parse(row.Content);
            if (row.RoomId.Length == 0)
            {
                global[row.Type] = content;
            }
            else
            {
                (perRoom[row.RoomId] ??= new JsonObject()).AsObject()[row.Type] = content;
            }
        }

        return new JsonObject
        {
            ["format"] = Format,
            ["user_id"] = userId,
            ["exported_ts"] = hs.NowMs,
            ["server_name"] = hs.ServerName,
            ["account"] = new JsonObject
            {
                ["created_ts"] = account.CreatedTs,
                ["admin"] = account.IsAdmin,
                ["guest"] = account.IsGuest,
                ["user_type"] = account.UserType,
                ["deactivated"] = account.Deactivated,
                ["erased"] = account.Erased,
            },
            ["profile"] = new JsonObject { ["displayname"] = profile?.Displayname, ["avatar_url"] = profile?.AvatarUrl },
            ["devices"] = devices,
            ["account_data"] = new JsonObject { ["global"] = global, ["rooms"] = perRoom },
            ["push_rules"] = (await hs.Push.Rules.GetAsync(userId, ct)).ToAccountData(),
            ["pushers"] = await PushersAsync(userId, ct),
            ["consent"] = await hs.Privacy.ConsentAsync(userId, ct) is { } consent
                ? new JsonObject { ["version"] = consent.Version, ["consented_ts"] = consent.ConsentedTs }
                : null,
            ["presence"] = await hs.Presence.GetAsync(userId, ct) is { } presence
                ? new JsonObject { ["presence"] = presence.State, ["status_msg"] = presence.StatusMsg, ["last_active_ts"] = presence.LastActiveTs }
                : null,
            ["filters"] = new JsonArray([.. (await hs.Privacy.FiltersAsync(userId, ct)).Select(f => (JsonNode)new JsonObject
            {
                ["filter_id"] = f.FilterId.ToString(CultureInfo.InvariantCulture),
                ["filter"] = JsonNode.Parse(f.Json),
            })]),
            ["receipts"] = new JsonArray([.. (await hs.Privacy.ReceiptsAsync(userId, ct)).Select(r => (JsonNode)new JsonObject
            {
                ["room_id"] = r.RoomId,
                ["receipt_type"] = r.ReceiptType,
                ["thread_id"] = r.ThreadId.Length == 0 ? null : r.ThreadId,
                ["event_id"] = r.EventId,
                ["ts"] = r.Ts,
            })]),
            ["reports"] = new JsonArray([.. (await hs.Reports.ByReporterAsync(userId, ct)).Select(r => (JsonNode)new JsonObject
            {
                ["report_id"] = r.Id,
                ["kind"] = r.EventId is not null ? "event" : r.TargetUserId is not null ? "user" : "room",
                ["room_id"] = r.RoomId,
                ["event_id"] = r.EventId,
                ["user_id"] = r.TargetUserId,
                ["reason"] = r.Reason,
                ["score"] = r.Score,
                ["received_ts"] = r.ReceivedTs,
            })]),
            ["e2ee"] = await E2eeJsonAsync(userId, ct),
            ["rooms"] = new JsonArray(rooms.Select(r => (JsonNode)new JsonObject
            {
                ["room_id"] = r.RoomId,
                ["membership"] = r.Membership,
                ["timeline"] = roomFiles[r.RoomId],
            }).ToArray()),
            ["files"] = new JsonObject
            {
                ["sent_events"] = "sent_events.jsonl",
                ["sent_messages_csv"] = "sent_messages.csv",
                ["media"] = "media.jsonl",
            },
        };
    }

    /// <summary>A device as the export and the privacy report show it: no tokens or keys, its last IP and user agent.</summary>
    public static JsonObject DeviceJson(DeviceRecord d) => new()
    {
        ["device_id"] = d.DeviceId,
        ["display_name"] = d.DisplayName,
        ["created_ts"] = d.CreatedTs,
        ["last_seen_ts"] = d.LastSeenTs,
        ["last_seen_ip"] = d.LastSeenIp,
        ["last_seen_user_agent"] = d.LastSeenUserAgent,
    };

    /// <summary>
    /// The public half of the user's end-to-end encryption setup: each device's identity keys, the cross-signing
    /// public keys, and the key backup versions with how many keys each holds. The backed-up keys themselves are
    /// encrypted for the user's recovery key (the server cannot read them; clients restore them through the key backup
    /// API), and one-time keys are short-lived key material: neither is exported.
    /// </summary>
    private async Task<JsonObject> E2eeJsonAsync(string userId, CancellationToken ct)
    {
        var deviceKeys = new JsonObject();
        foreach (var (deviceId, json, _) in await hs.Keys.DeviceKeysAsync(userId, [], ct))
        {
            deviceKeys[deviceId] = JsonNode.Parse(json);
        }

        var crossSigning = new JsonObject();
        foreach (var (type, row) in (await hs.Keys.CrossSigningKeysAsync(userId, ct)).OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            crossSigning[type] = JsonNode.Parse(row.KeyJson);
        }

        var backups = new JsonArray();
        foreach (var v in await hs.Privacy.KeyBackupVersionsAsync(userId, ct))
        {
            backups.Add((JsonNode)new JsonObject
            {
                ["version"] = v.Version.ToString(CultureInfo.InvariantCulture),
                ["algorithm"] = v.Algorithm,
                ["auth_data"] = JsonNode.Parse(v.AuthData),
                ["etag"] = v.Etag.ToString(CultureInfo.InvariantCulture),
                ["count"] = v.Keys,
            });
        }

        return new JsonObject { ["device_keys"] = deviceKeys, ["cross_signing_keys"] = crossSigning, ["key_backup_versions"] = backups };
    }

    /// <summary>The user's pushers, without their pushkeys (device tokens for the push gateway, a secret of the app).</summary>
    private async Task<JsonArray> PushersAsync(string userId, CancellationToken ct)
    {
        var list = new JsonArray();
        foreach (var p in await hs.Push.Store.PushersOfAsync(userId, ct))
        {
            list.Add((JsonNode)new JsonObject
            {
                ["kind"] = p.Kind,
                ["app_id"] = p.AppId,
                ["app_display_name"] = p.AppDisplayName,
                ["device_display_name"] = p.DeviceDisplayName,
                ["lang"] = p.Lang,
                ["data"] = JsonNode.Parse(p.Data),
                ["created_ts"] = p.CreatedTs,
            });
        }

        return list;
    }

    /// <summary>
    /// The user's sent events as JSON lines and as CSV rows, in one pass over the pages. The CSV goes to a temporary
    /// file first and is copied in afterwards, because a zip archive written to a non-seekable stream takes one entry
    /// at a time.
    /// </summary>
    private async Task<long> WriteSentAsync(string userId, ISink sink, CancellationToken ct)
    {
        var viewer = new ClientEventFormat.Viewer(userId, "");
        var csvPath = Path.GetTempFileName();
        try
        {
            long count = 0;
            await using (var csvFile = new FileStream(csvPath, FileMode.Create, FileAccess.Write, FileShare.None, 65536))
            await using (var csv = new StreamWriter(csvFile, new UTF8Encoding(false)))
            await using (var events = sink.Create("sent_events.jsonl"))
            {
                await csv.WriteAsync("room_id,event_id,origin_server_ts,sent_at_utc,type,msgtype,body\r\n");
                long after = long.MinValue;
                while (true)
                {
                    var page = await hs.Privacy.SentEventsAsync(userId, after, PageSize, ct);
                    if (page.Count == 0)
                    {
                        break;
                    }

                    after = page[^1].StreamOrdering;
                    foreach (var room in page.GroupBy(r => r.RoomId))
                    {
                        var visible = await hs.Visibility.FilterAsync(userId, room.Key, await hs.Events.FromRowsAsync(room, ct, fill: false), null, ct);
                        var formatted = await hs.Format.ToClientAsync(visible, viewer, includeRoomId: true, ct);
                        for (var i = 0; i < visible.Count; i++)
                        {
                            await WriteLineAsync(events, formatted[i]!.AsObject(), ct);
                            await csv.WriteAsync(CsvRow(visible[i]));
                            count++;
                        }
                    }
                }
            }

            await using (var target = sink.Create("sent_messages.csv"))
            await using (var source = File.OpenRead(csvPath))
            {
                await source.CopyToAsync(target, ct);
            }

            return count;
        }
        finally
        {
            File.Delete(csvPath);
        }
    }

    private static string CsvRow(StoredEvent e)
    {
        var content = e.Pdu.Content;
        return string.Join(',',
            Csv(e.Row.RoomId),
            Csv(e.EventId),
            e.Pdu.OriginServerTs.ToString(CultureInfo.InvariantCulture),
            DateTimeOffset.FromUnixTimeMilliseconds(e.Pdu.OriginServerTs).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
            Csv(e.Pdu.Type),
            Csv(content.GetString("msgtype") ?? ""),
            Csv(content.GetString("body") ?? "")) + "\r\n";
    }

    /// <summary>The user's uploads: each file as <c>media/ID</c> (streamed), and <c>media.jsonl</c> describing them.</summary>
    private async Task WriteMediaAsync(string userId, ISink sink, CancellationToken ct)
    {
        var items = new List<Storage.MediaRecord>();
        for (var from = 0; ; from += PageSize)
        {
            var page = await hs.Media.Store.ListByUserAsync(userId, from, PageSize, ct);
            items.AddRange(page);
            if (page.Count < PageSize)
            {
                break;
            }
        }

        var written = new List<Storage.MediaRecord>();
        foreach (var item in items.OrderBy(m => m.CreatedTs))
        {
            var path = hs.Media.Files.ContentPath(item.MediaId);
            if (!File.Exists(path))
            {
                continue;
            }

            await using (var target = sink.Create("media/" + item.MediaId))
            await using (var source = File.OpenRead(path))
            {
                await source.CopyToAsync(target, ct);
            }

            written.Add(item);
        }

        await using var index = sink.Create("media.jsonl");
        foreach (var item in written)
        {
            await WriteLineAsync(index, new JsonObject
            {
                ["content_uri"] = $"mxc://{hs.ServerName}/{item.MediaId}",
                ["file"] = "media/" + item.MediaId,
                ["content_type"] = item.ContentType,
                ["upload_name"] = item.UploadName,
                ["size"] = item.Size,
                ["created_ts"] = item.CreatedTs,
            }, ct);
        }
    }

    private async Task WriteTimelineAsync(string userId, string roomId, ISink sink, string path, CancellationToken ct)
    {
        await using var stream = sink.Create(path);
        var viewer = new ClientEventFormat.Viewer(userId, "");
        var after = long.MinValue;
        while (true)
        {
            var page = await hs.EventStore.RoomPageAsync(roomId, after, long.MaxValue, backwards: false, PageSize, ct);
            if (page.Count == 0)
            {
                return;
            }

            after = page[^1].StreamOrdering;
            var visible = await hs.Visibility.FilterAsync(userId, roomId, await hs.Events.FromRowsAsync(page, ct, fill: false), null, ct);
            foreach (var e in await hs.Format.ToClientAsync(visible, viewer, includeRoomId: true, ct))
            {
                await WriteLineAsync(stream, e!.AsObject(), ct);
            }
        }
    }

    private static async Task WriteLineAsync(Stream stream, JsonObject json, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(json.ToJsonString());
        await stream.WriteAsync(bytes, ct);
        stream.WriteByte((byte)'\n');
    }

    /// <summary>RFC 4180: quote every field that needs it, doubling quotes inside.</summary>
    private static string Csv(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    /// <summary>A room ID as a folder name: the characters that are unsafe in paths replaced (IDs are ASCII).</summary>
    private static string SafeName(string roomId)
    {
        var name = new StringBuilder(roomId.Length);
        foreach (var c in roomId)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_');
        }

        // Different IDs can map to the same name (":" and "_" both become "_"): a short hash keeps them apart.
        var hash = Convert.ToHexStringLower(Sha256.Hash(Encoding.UTF8.GetBytes(roomId)))[..8];
        return name.Append('-').Append(hash).ToString();
    }
}
