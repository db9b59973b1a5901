using System.Text;
using System.Text.Json.Nodes;
using Lethe.Protocol.Json;
using Lethe.Storage;

namespace Lethe.Homeserver.Directories;

/// <summary>
/// User directory search with Synapse's default scope (<c>user_directory.search_all_users: false</c>): the users who
/// share a room with the searcher plus the users joined to public rooms (public join rule or world-readable history).
/// Deactivated, support and application-service users never appear. Each word of the term must occur in the user ID or
/// the display name, case-insensitively; whole words rank above word prefixes, which rank above other occurrences.
/// </summary>
public sealed class UserDirectory(HomeserverServices hs, DirectoryStore store)
{
    /// <summary>Words of a search term considered, as in Synapse (more only cost database time).</summary>
    private const int MaxWords = 10;

    /// <summary>Matching users examined per search; Synapse bounds its full-text match the same way.</summary>
    internal const int MaxCandidates = 2000;

    /// <summary>Searches for <paramref name="searcher"/>; returns the response body (<c>results</c>, <c>limited</c>).</summary>
    public async Task<JsonObject> SearchAsync(string searcher, string term, int limit, CancellationToken ct)
    {
        var words = Words(term).Distinct(StringComparer.Ordinal).Take(MaxWords).ToList();
        if (words.Count == 0)
        {
            return Response([], limited: false);
        }

        // Non-ASCII characters become single-character wildcards: SQLite's LOWER() folds ASCII only, so the database
        // narrows the candidates and the exact case-insensitive match happens here.
        var patterns = words.Select(w => "%" + new string(w.Select(c => c < 128 ? c : '_').ToArray()) + "%").ToList();
        var rows = await store.SearchCandidatesAsync(searcher, patterns, MaxCandidates, ct);
        var candidates = rows.GroupBy(r => r.UserId, StringComparer.Ordinal).ToList();

        // Users who share a room with the searcher are visible outright; the others need a public room.
        var publicRooms = await PublicRoomsAsync(candidates.Where(g => !g.Any(r => r.SharedRoom is not null)).SelectMany(g => g), ct);
        var matches = new List<(UserDirectoryRow User, int Score)>();
        foreach (var user in candidates)
        {
            if (!user.Any(r => r.SharedRoom is not null || publicRooms.Contains(r.RoomId)))
            {
                continue;
            }

            var first = user.First();
            if (Score(words, first.UserId, first.Displayname) is { } score)
            {
                matches.Add((first, score));
            }
        }

        var ranked = matches
            .OrderByDescending(m => m.Score)
            .ThenBy(m => m.User.Displayname is null)
            .ThenBy(m => m.User.AvatarUrl is null)
            .ThenBy(m => m.User.UserId, StringComparer.Ordinal)
            .Take(limit)
            .Select(m => m.User)
            .ToList();
        return Response(ranked, limited: matches.Count > limit || candidates.Count >= MaxCandidates);
    }

    private static JsonObject Response(List<UserDirectoryRow> users, bool limited)
    {
        var results = new JsonArray();
        foreach (var u in users)
        {
            var entry = new JsonObject { ["user_id"] = u.UserId };
            if (u.Displayname is not null)
            {
                entry["display_name"] = u.Displayname;
            }

            if (u.AvatarUrl is not null)
            {
                entry["avatar_url"] = u.AvatarUrl;
            }

            results.Add((JsonNode)entry);
        }

        return new JsonObject { ["results"] = results, ["limited"] = limited };
    }

    /// <summary>Which of the rooms in <paramref name="rows"/> have a public join rule or world-readable history.</summary>
    private async Task<HashSet<string>> PublicRoomsAsync(IEnumerable<UserDirectoryRow> rows, CancellationToken ct)
    {
        var rooms = rows.DistinctBy(r => r.RoomId, StringComparer.Ordinal).ToList();
        var events = await hs.Events.GetManyAsync(
            rooms.SelectMany(r => new[] { r.JoinRulesId, r.HistoryVisibilityId }).OfType<string>(), ct);
        string? Get(string? eventId, string key) =>
            eventId is not null && events.TryGetValue(eventId, out var e) ? e.Pdu.Content.GetString(key) : null;

        return rooms
            .Where(r => Get(r.JoinRulesId, "join_rule") == "public" || Get(r.HistoryVisibilityId, "history_visibility") == "world_readable")
            .Select(r => r.RoomId)
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// How well a user matches: per word of the term, 3 for a whole word of the localpart or display name, 2 for the
    /// start of one, 1 for any other occurrence in the user ID or display name; null when some word does not occur.
    /// </summary>
    internal static int? Score(IReadOnlyList<string> words, string userId, string? displayName)
    {
        var colon = userId.IndexOf(':', StringComparison.Ordinal);
        var localpart = colon > 0 ? userId[1..colon] : userId;
        var named = Words(localpart).Concat(displayName is null ? [] : Words(displayName)).ToList();
        var id = userId.ToLowerInvariant();
        var name = displayName?.ToLowerInvariant();
        var total = 0;
        foreach (var w in words)
        {
            if (named.Contains(w, StringComparer.Ordinal))
            {
                total += 3;
            }
            else if (named.Any(n => n.StartsWith(w, StringComparison.Ordinal)))
            {
                total += 2;
            }
            else if (id.Contains(w, StringComparison.Ordinal) || (name?.Contains(w, StringComparison.Ordinal) ?? false))
            {
                total += 1;
            }
            else
            {
                return null;
            }
        }

        return total;
    }

    /// <summary>The lower-cased words of a text: runs of letters and digits (so <c>@bob.smith:example.org</c> is bob, smith, example, org).</summary>
    internal static IEnumerable<string> Words(string text)
    {
        var word = new StringBuilder();
        foreach (var c in text.ToLowerInvariant())
        {
            if (char.IsLetterOrDigit(c))
            {
                word.Append(c);
            }
            else if (word.Length > 0)
            {
                yield return word.ToString();
                word.Clear();
            }
        }

        if (word.Length > 0)
        {
            yield return word.ToString();
        }
    }
}
