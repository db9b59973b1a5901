using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Lethe.Homeserver.AccountData;

namespace Lethe.Homeserver.Push;

/// <summary>
/// Users' push rules: read from <c>m.push_rules</c> account data, compiled once and cached; changed only through
/// <see cref="ChangeAsync"/>, which writes the new ruleset back as account data (so /sync shows it) and recompiles.
/// Users who never changed a rule share one compiled default ruleset.
/// </summary>
public sealed class PushRuleStore(HomeserverServices hs)
{
    private static readonly CompiledPushRules SharedDefaults = PushRuleSet.Defaults("@_:_").Compile();
    private readonly ConcurrentDictionary<string, CompiledPushRules> _compiled = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _edits = new(1, 1);
    private long _version;

    /// <summary>Changes with every rule edit, so compiled rules kept elsewhere know to reload.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>A user's ruleset as stored (defaults when none).</summary>
    public async Task<PushRuleSet> GetAsync(string userId, CancellationToken ct)
    {
        var stored = await hs.AccountData.GetAsync(userId, "", "m.push_rules", ct);
        return PushRuleSet.FromStored(userId, stored is null ? null : AccountDataJson.Parse(stored));
    }

    /// <summary>The compiled rules of the given users, loading the ones not cached in one query.</summary>
    public async Task<CompiledPushRules[]> CompiledAsync(IReadOnlyList<string> userIds, CancellationToken ct)
    {
        var result = new CompiledPushRules[userIds.Count];
        List<int>? missing = null;
        for (var i = 0; i < userIds.Count; i++)
        {
            if (_compiled.TryGetValue(userIds[i], out var c))
            {
                result[i] = c;
            }
            else
            {
                (missing ??= []).Add(i);
            }
        }

        if (missing is null)
        {
            return result;
        }

        var stored = await hs.Push.Store.PushRulesOfAsync(missing.Select(i => userIds[i]).ToList(), ct);
        foreach (var i in missing)
        {
            var userId = userIds[i];
            var compiled = stored.TryGetValue(userId, out var bytes) ? Compile(PushRuleSet.FromStored(userId, AccountDataJson.Parse(bytes))) : SharedDefaults;
            // An edit that raced this load has already installed the newer rules; keep those.
            result[i] = _compiled.GetOrAdd(userId, compiled);
        }

        return result;
    }

    /// <summary>
    /// Applies a change to a user's rules under the edit lock; when <paramref name="change"/> returns true the new
    /// ruleset is stored as account data (waking the user's syncs) and takes effect for the next event.
    /// </summary>
    public async Task ChangeAsync(string userId, Func<PushRuleSet, bool> change, CancellationToken ct)
    {
        await _edits.WaitAsync(ct);
        try
        {
            var set = await GetAsync(userId, ct);
            if (!change(set))
            {
                return;
            }

            await AccountDataEndpoints.SetRawAsync(hs, userId, "", "m.push_rules", set.ToAccountData(), ct);
            _compiled[userId] = Compile(set);
            Interlocked.Increment(ref _version);
        }
        finally
        {
            _edits.Release();
        }
    }

    /// <summary>Copies a user's rules for an upgraded room to its replacement (see <see cref="PushRuleSet.CopyRoomRules"/>).</summary>
    public async Task CopyRoomRulesAsync(string userId, string oldRoomId, string newRoomId, CancellationToken ct)
    {
        // Most users have no rules of their own: read without the edit lock first.
        if ((await GetAsync(userId, ct)).IsDefault)
        {
            return;
        }

        await ChangeAsync(userId, set => set.CopyRoomRules(oldRoomId, newRoomId), ct);
    }

    /// <summary>The default ruleset's content for a user who has none stored (initial sync shows it).</summary>
    public static JsonObject DefaultAccountData(string userId) => PushRuleSet.Defaults(userId).ToAccountData();

    private static CompiledPushRules Compile(PushRuleSet set) => set.IsDefault ? SharedDefaults : set.Compile();
}
