using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.State;
using Lethe.Protocol.Tests.Auth;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>
/// A seeded random room: a shared trunk, then forks (some branching off earlier forks) of random membership, power,
/// join rule and topic changes. Only events the rules allow on their fork are kept, as an honest server would.
/// </summary>
internal sealed class RandomForks
{
    private static readonly string[] People = [Alice, Bob, Charlie, Dave, Eve, Zara];
    private readonly Random _random;
    private readonly RoomVersion _version;
    private readonly string _roomId;

    private RandomForks(RoomVersion version, int seed, TestRoom trunk)
    {
        _version = version;
        _random = new Random(seed);
        _roomId = trunk.RoomId;
        foreach (var e in trunk.Events)
        {
            Events.Add(e);
        }

        Events.Add(trunk.Create);
    }

    public List<Pdu> Events { get; } = [];

    public List<IReadOnlyDictionary<StateKey, string>> StateSets { get; } = [];

    public string RoomId => _roomId;

    public static RandomForks Generate(RoomVersion version, int seed, int forks = 3, int eventsPerFork = 12)
    {
        var trunk = TestRoom.Standard(version);
        var levels = version.PrivilegedCreators
            ? new JsonObject { ["users"] = new JsonObject { [Bob] = 50, [Charlie] = 50 } }
            : new JsonObject { ["users"] = new JsonObject { [Alice] = 100, [Bob] = 50, [Charlie] = 50 } };
        trunk.SetPowerLevels(Alice, levels);
        foreach (var user in new[] { Bob, Charlie, Dave, Zara })
        {
            trunk.Join(user);
        }

        trunk.Add(Alice, EventTypes.Topic, "", new JsonObject { ["topic"] = "trunk" });
        var result = new RandomForks(version, seed, trunk);
        var tips = new List<Fork> { new(trunk.State, trunk.Events[^1]) };
        for (var f = 0; f < forks; f++)
        {
            // Most forks leave the trunk; some leave part-way along an earlier fork.
            var from = tips[result._random.Next(tips.Count)];
            var fork = from.Copy();
            for (var i = 0; i < eventsPerFork; i++)
            {
                result.TryStep(fork);
            }

            tips.Add(fork);
            result.StateSets.Add(fork.StateIds());
        }

        return result;
    }

    /// <summary>A source holding every event, added in a seeded random order.</summary>
    public InMemoryStateEventSource ShuffledSource(int seed)
    {
        var shuffled = Events.ToArray();
        new Random(seed).Shuffle(shuffled);
        return new InMemoryStateEventSource(shuffled);
    }

    private void TryStep(Fork fork)
    {
        var sender = People[_random.Next(People.Length)];
        var target = People[_random.Next(People.Length)];
        var (type, stateKey, content) = _random.Next(9) switch
        {
            0 => (EventTypes.Topic, "", new JsonObject { ["topic"] = "t" + _random.Next(1000) }),
            1 => (EventTypes.PowerLevels, "", RandomLevels(fork)),
            2 => (EventTypes.Member, target, Member(Membership.Ban)),
            3 => (EventTypes.Member, target, Member(Membership.Leave)),
            4 => (EventTypes.Member, sender, Member(Membership.Join)),
            5 => (EventTypes.Member, sender, Member(Membership.Leave)),
            6 => (EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = _random.Next(2) == 0 ? JoinRule.Public : JoinRule.Invite }),
            7 => (EventTypes.Member, target, Member(Membership.Invite)),
            _ => ("m.custom", "k" + _random.Next(3), new JsonObject { ["v"] = _random.Next(100) }),
        };

        var authIds = new List<string>();
        foreach (var key in AuthEventSelection.Select(_version, type, sender, stateKey, content))
        {
            if (fork.State.TryGetValue(key, out var e))
            {
                authIds.Add(e.EventId);
            }
        }

        var pdu = EventFactory.Build(_version, _roomId, sender, type, stateKey, content, [fork.Last.EventId], authIds, fork.Last.Depth + 1);
        if (!EventAuthorizer.Default.CheckWithState(pdu, fork.State).IsAllowed)
        {
            return;
        }

        Events.Add(pdu);
        fork.Last = pdu;
        fork.State[pdu.StateMapKey] = pdu;
    }

    private JsonObject RandomLevels(Fork fork)
    {
        var current = (JsonObject)fork.State[new StateKey(EventTypes.PowerLevels, "")].Content.DeepClone();
        var users = (JsonObject)current["users"]!;
        var who = People[1 + _random.Next(People.Length - 1)];
        users[who] = new[] { 0, 10, 50, 100 }[_random.Next(4)];
        if (_random.Next(3) == 0)
        {
            current["state_default"] = new[] { 0, 50 }[_random.Next(2)];
        }

        return current;
    }

    private static JsonObject Member(string membership) => new() { ["membership"] = membership };

    private sealed class Fork(Dictionary<StateKey, Pdu> state, Pdu last)
    {
        public Dictionary<StateKey, Pdu> State { get; } = new(state);

        public Pdu Last { get; set; } = last;

        public Fork Copy() => new(State, Last);

        public Dictionary<StateKey, string> StateIds() => State.ToDictionary(kv => kv.Key, kv => kv.Value.EventId);
    }
}
