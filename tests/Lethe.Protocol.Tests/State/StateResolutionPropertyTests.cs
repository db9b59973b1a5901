using Lethe.Protocol.Events;
using Lethe.Protocol.State;

namespace Lethe.Protocol.Tests.State;

/// <summary>Properties every resolution must have, checked on seeded random forks in each algorithm's room versions.</summary>
public class StateResolutionPropertyTests
{
    private const int Seeds = 12;

    public static TheoryData<int> Versions() => [1, 2, 6, 10, 11, 12];

    private static Task<Dictionary<StateKey, string>> ResolveAsync(RoomVersion version, RandomForks forks, IReadOnlyList<IReadOnlyDictionary<StateKey, string>> sets, IStateEventSource? source = null) =>
        StateResolver.Default.ResolveAsync(version, forks.RoomId, sets, source ?? new InMemoryStateEventSource(forks.Events)).AsTask();

    private static IEnumerable<(int Seed, RandomForks Forks)> Rooms(RoomVersion version)
    {
        for (var seed = 1; seed <= Seeds; seed++)
        {
            yield return (seed, RandomForks.Generate(version, seed * 7919 + int.Parse(version.Identifier, System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task TheResultDoesNotDependOnTheOrderOfTheStateSets(int v)
    {
        var version = Tests.Auth.Expect.Version(v);
        foreach (var (seed, forks) in Rooms(version))
        {
            var expected = await ResolveAsync(version, forks, forks.StateSets);
            var shuffled = forks.StateSets.ToArray();
            for (var attempt = 0; attempt < 3; attempt++)
            {
                new Random(seed + attempt).Shuffle(shuffled);
                Assert.Equal(expected, await ResolveAsync(version, forks, shuffled));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task TheResultDoesNotDependOnTheOrderEventsAreSupplied(int v)
    {
        var version = Tests.Auth.Expect.Version(v);
        foreach (var (seed, forks) in Rooms(version))
        {
            var expected = await ResolveAsync(version, forks, forks.StateSets);

            // Reorder both the source's events and each state map's entries.
            var random = new Random(seed);
            var reordered = forks.StateSets
                .Select(set => (IReadOnlyDictionary<StateKey, string>)set.OrderBy(_ => random.Next()).ToDictionary(kv => kv.Key, kv => kv.Value))
                .ToList();
            Assert.Equal(expected, await ResolveAsync(version, forks, reordered, forks.ShuffledSource(seed)));
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task ASingleStateSetResolvesToItself(int v)
    {
        var version = Tests.Auth.Expect.Version(v);
        foreach (var (_, forks) in Rooms(version))
        {
            Assert.Equal(forks.StateSets[0], await ResolveAsync(version, forks, [forks.StateSets[0]]));
            Assert.Equal(forks.StateSets[0], await ResolveAsync(version, forks, [forks.StateSets[0], forks.StateSets[0]]));
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task TheUnconflictedStateAlwaysSurvives(int v)
    {
        var version = Tests.Auth.Expect.Version(v);
        foreach (var (_, forks) in Rooms(version))
        {
            var resolved = await ResolveAsync(version, forks, forks.StateSets);
            foreach (var (key, id) in forks.StateSets[0])
            {
                if (forks.StateSets.All(set => set.TryGetValue(key, out var other) && other == id))
                {
                    Assert.Equal(id, resolved[key]);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task RepeatingAStateSetChangesNothing(int v)
    {
        var version = Tests.Auth.Expect.Version(v);
        foreach (var (_, forks) in Rooms(version))
        {
            var expected = await ResolveAsync(version, forks, forks.StateSets);
            Assert.Equal(expected, await ResolveAsync(version, forks, [.. forks.StateSets, forks.StateSets[0]]));
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task EveryResolvedEntryIsAnEventOfThatKey(int v)
    {
        var version = Tests.Auth.Expect.Version(v);
        foreach (var (_, forks) in Rooms(version))
        {
            var byId = forks.Events.ToDictionary(e => e.EventId);
            var resolved = await ResolveAsync(version, forks, forks.StateSets);
            Assert.Contains(new StateKey(EventTypes.Create, ""), resolved.Keys);
            foreach (var (key, id) in resolved)
            {
                Assert.Equal(key, byId[id].StateMapKey);
            }
        }
    }

    [Fact]
    public async Task TheRandomForksActuallyConflict()
    {
        // Guards the generator: the properties above mean little if the forks never disagree.
        var conflicted = 0;
        foreach (var (_, forks) in Rooms(RoomVersion.V11))
        {
            var (_, ids) = StateResolutionV2.Split(forks.StateSets);
            conflicted += ids.Count;
        }

        Assert.True(conflicted > Seeds * 3, $"only {conflicted} conflicted events across {Seeds} rooms");
    }
}
