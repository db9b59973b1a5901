using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.State;
using Lethe.Protocol.Tests.Auth;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>Big forks (a thousand conflicted events) resolve, and resolve the same way every time. Their speed is measured in bench/, not here.</summary>
public class StateResolutionLargeForkTests
{
    private const int EventsPerFork = 600;

    /// <summary>Two forks off a shared room, each with joins, kicks (power events), power level changes and custom state.</summary>
    private static (string RoomId, InMemoryStateEventSource Source, List<IReadOnlyDictionary<StateKey, string>> Sets, int Conflicted) BigForks(RoomVersion version)
    {
        var trunk = TestRoom.Standard(version);
        trunk.Join(Bob);
        var source = new InMemoryStateEventSource(trunk.Events.Append(trunk.Create));
        var sets = new List<IReadOnlyDictionary<StateKey, string>>();
        for (var fork = 0; fork < 2; fork++)
        {
            var state = new Dictionary<StateKey, Pdu>(trunk.State);
            var last = trunk.Events[^1];
            var levelsEvents = 0;
            for (var i = 0; i < EventsPerFork; i++)
            {
                var user = $"@u{fork}x{i / 2}:example.com";
                var (sender, type, key, content) = (i % 2, i % 50) switch
                {
                    (_, 49) => (Alice, EventTypes.PowerLevels, "", Levels(version, ++levelsEvents)),
                    (0, _) => (user, EventTypes.Member, user, new JsonObject { ["membership"] = Membership.Join }),
                    (_, _) when i % 10 == 1 => (Alice, EventTypes.Member, $"@u{fork}x{(i - 1) / 2}:example.com", new JsonObject { ["membership"] = Membership.Leave }),
                    _ => (Alice, "m.custom", $"{fork}.{i}", new JsonObject { ["n"] = i }),
                };
                var auth = AuthEventSelection.Select(version, type, sender, key, content)
                    .Where(state.ContainsKey).Select(k => state[k].EventId);
                var pdu = EventFactory.Build(version, trunk.RoomId, sender, type, key, content, [last.EventId], auth, last.Depth + 1);
                Assert.True(EventAuthorizer.Default.CheckWithState(pdu, state).IsAllowed);
                state[pdu.StateMapKey] = pdu;
                source.Add(pdu);
                last = pdu;
            }

            sets.Add(state.ToDictionary(kv => kv.Key, kv => kv.Value.EventId));
        }

        var (_, conflicted) = StateResolutionV2.Split(sets);
        return (trunk.RoomId, source, sets, conflicted.Count);
    }

    private static JsonObject Levels(RoomVersion version, int n)
    {
        var users = version.PrivilegedCreators ? new JsonObject() : new JsonObject { [Alice] = 100 };
        users[Bob] = n;
        return new JsonObject { ["users"] = users };
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public async Task AThousandConflictedEventsResolveDeterministically(int v)
    {
        var version = Expect.Version(v);
        var (roomId, source, sets, conflicted) = BigForks(version);
        Assert.True(conflicted >= 1000, $"only {conflicted} conflicted events");

        var first = await StateResolver.Default.ResolveAsync(version, roomId, sets, source);
        var second = await StateResolver.Default.ResolveAsync(version, roomId, [sets[1], sets[0]], source);
        Assert.Equal(first, second);

        // Both forks' joins survive; the kicked users (every fifth: 0, 5, 10, …) stay kicked.
        Assert.Equal(Membership.Join, MembershipIn(second, source, "@u0x1:example.com"));
        Assert.Equal(Membership.Leave, MembershipIn(second, source, "@u1x5:example.com"));
    }

    private static string? MembershipIn(Dictionary<StateKey, string> state, InMemoryStateEventSource source, string user)
    {
        var id = state[new StateKey(EventTypes.Member, user)];
        return source.GetEventsAsync([id], CancellationToken.None).AsTask().Result[id].Event.Membership;
    }
}
