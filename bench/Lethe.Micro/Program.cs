using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Protocol.State;
using Lethe.Micro;

// Micro-benchmarks of the protocol core (bench issue). Run: dotnet run -c Release --project bench/Lethe.Micro [-- --filter *Hash*]
// In-process, so no second build of the project is needed; short runs (3 warm-ups, 5 iterations) keep the whole set under a few minutes.
var config = ManualConfig.Create(DefaultConfig.Instance)
    .AddJob(Job.ShortRun.WithWarmupCount(3).WithIterationCount(5).WithToolchain(InProcessEmitToolchain.Instance));
BenchmarkSwitcher.FromAssembly(typeof(ProtocolBenchmarks).Assembly).Run(args, config);

namespace Lethe.Micro
{
    /// <summary>Canonical JSON, event hashing and signing, signature verification: the per-event costs of the write and federation paths.</summary>
    [MemoryDiagnoser]
    public class ProtocolBenchmarks
    {
        private readonly RoomVersion _version = RoomVersion.V11;
        private readonly SigningKey _key = SigningKey.Generate();
        private JsonObject _unsigned = null!;
        private JsonObject _signed = null!;

        [GlobalSetup]
        public void Setup()
        {
            _unsigned = Rooms.Message(0);
            _signed = (JsonObject)_unsigned.DeepClone();
            EventHashing.HashAndSign(_signed, _version, "bench.local", _key);
        }

        /// <summary>A typical message event (about 700 bytes) as canonical JSON.</summary>
        [Benchmark]
        public byte[] CanonicalEncode() => CanonicalJson.Encode(_signed);

        /// <summary>Content hash, reference hash and ed25519 signature of a new event.</summary>
        [Benchmark]
        public byte[] HashAndSign() => EventHashing.HashAndSign((JsonObject)_unsigned.DeepClone(), _version, "bench.local", _key);

        /// <summary>Checking a received event's signature (what federation does for every incoming PDU).</summary>
        [Benchmark]
        public bool VerifySignature() => EventHashing.VerifySignature(_signed, _version, "bench.local", _key.KeyId, _key.PublicKey);
    }

    /// <summary>State resolution v2 of two forks whose state differs in over a thousand entries.</summary>
    public class StateResolutionBenchmarks
    {
        private Rooms.Forks _forks = null!;

        [GlobalSetup]
        public void Setup()
        {
            _forks = Rooms.TwoForks(RoomVersion.V11, eventsPerFork: 600);
            Console.WriteLine($"// conflicted state entries: {_forks.Conflicted}");
        }

        [Benchmark]
        public async Task<int> Resolve() =>
            (await StateResolver.Default.ResolveAsync(_forks.Version, _forks.RoomId, _forks.Sets, _forks.Source)).Count;
    }

    /// <summary>Builds signed events for the benchmarks through the public protocol API.</summary>
    public static class Rooms
    {
        private const string Alice = "@alice:bench.local";
        private static readonly SigningKey Key = SigningKey.Generate();
        private static long _ts = 1_700_000_000_000;

        public sealed record Forks(RoomVersion Version, string RoomId, List<IReadOnlyDictionary<StateKey, string>> Sets, InMemoryStateEventSource Source, int Conflicted);

        public static JsonObject Message(int depth) => new()
        {
            ["room_id"] = "!room:bench.local",
            ["sender"] = Alice,
            ["type"] = "m.room.message",
            ["content"] = new JsonObject
            {
                ["msgtype"] = "m.text",
                ["body"] = "A message of ordinary length, the kind people send all day long, with a few more words.",
                ["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray("@bob:bench.local") },
            },
            ["origin_server_ts"] = 1_700_000_000_000,
            ["depth"] = depth,
            ["prev_events"] = new JsonArray("$4HX2nZB8v0hpkMCvQ3a6DyKtSIf7kGZSYEI1dNEFzWU"),
            ["auth_events"] = new JsonArray("$XdjqhYj4Gv3v5mCr0P1kK_tYcKbJbXOnCaVd9jNNXq8", "$Hc1ZRC8QSUJ3aQjB8YMjw5TUwzn4uBkbB0Vx5aLZcTw", "$v6e_Vf0lsd0_X2FcvB4HgK98ekPr3LEV6-Ch3bTOnzI"),
        };

        /// <summary>A room (create, join, power levels, public join rule), then two forks off it of joins, leaves, power level changes and custom state.</summary>
        public static Forks TwoForks(RoomVersion version, int eventsPerFork)
        {
            var source = new InMemoryStateEventSource();
            var state = new Dictionary<StateKey, Pdu>();
            var create = Build(version, version.RoomIdIsCreateEventHash ? null : "!forks:bench.local", Alice, EventTypes.Create, "", new JsonObject { ["room_version"] = version.Identifier }, [], state, 1);
            source.Add(create);
            state[create.StateMapKey] = create;
            var last = create;
            foreach (var (type, key, content) in new[]
            {
                (EventTypes.Member, Alice, new JsonObject { ["membership"] = "join" }),
                (EventTypes.PowerLevels, "", Levels(version, 0)),
                (EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = "public" }),
            })
            {
                last = Apply(Build(version, create.RoomId, Alice, type, key, content, [last.EventId], state, last.Depth + 1), state, source);
            }

            var sets = new List<IReadOnlyDictionary<StateKey, string>>();
            var trunk = new Dictionary<StateKey, Pdu>(state);
            var trunkLast = last;
            for (var fork = 0; fork < 2; fork++)
            {
                var forkState = new Dictionary<StateKey, Pdu>(trunk);
                last = trunkLast;
                var levels = 0;
                for (var i = 0; i < eventsPerFork; i++)
                {
                    var user = $"@u{fork}x{i / 2}:bench.local";
                    var (sender, type, key, content) = (i % 2, i % 50) switch
                    {
                        (_, 49) => (Alice, EventTypes.PowerLevels, "", Levels(version, ++levels)),
                        (0, _) => (user, EventTypes.Member, user, new JsonObject { ["membership"] = "join" }),
                        (_, _) when i % 10 == 1 => (Alice, EventTypes.Member, $"@u{fork}x{(i - 1) / 2}:bench.local", new JsonObject { ["membership"] = "leave" }),
                        _ => (Alice, "m.custom", $"{fork}.{i}", new JsonObject { ["n"] = i }),
                    };
                    last = Apply(Build(version, create.RoomId, sender, type, key, content, [last.EventId], forkState, last.Depth + 1), forkState, source);
                }

                sets.Add(forkState.ToDictionary(kv => kv.Key, kv => kv.Value.EventId));
            }

            var conflicted = sets[0].Keys.Union(sets[1].Keys).Count(k => !sets[0].TryGetValue(k, out var a) || !sets[1].TryGetValue(k, out var b) || a != b);
            return new Forks(version, create.RoomId, sets, source, conflicted);
        }

        /// <summary>Power levels with the creator at 100 (v12 creators may not be listed) and Bob at <paramref name="n"/>.</summary>
        private static JsonObject Levels(RoomVersion version, int n)
        {
            var users = version.PrivilegedCreators ? new JsonObject() : new JsonObject { [Alice] = 100 };
            users["@bob:bench.local"] = n;
            return new JsonObject { ["users"] = users };
        }

        private static Pdu Apply(Pdu pdu, Dictionary<StateKey, Pdu> state, InMemoryStateEventSource source)
        {
            if (!EventAuthorizer.Default.CheckWithState(pdu, state).IsAllowed)
            {
                throw new InvalidOperationException("benchmark setup built an event the auth rules reject: " + pdu.EventId);
            }

            state[pdu.StateMapKey] = pdu;
            source.Add(pdu);
            return pdu;
        }

        private static Pdu Build(RoomVersion version, string? roomId, string sender, string type, string key, JsonObject content, string[] prev, Dictionary<StateKey, Pdu> state, long depth)
        {
            var auth = AuthEventSelection.Select(version, type, sender, key, content).Where(state.ContainsKey).Select(k => state[k].EventId);
            var json = new JsonObject
            {
                ["sender"] = sender,
                ["type"] = type,
                ["state_key"] = key,
                ["content"] = content,
                ["origin_server_ts"] = ++_ts,
                ["depth"] = depth,
                ["prev_events"] = new JsonArray(prev.Select(p => (JsonNode)p).ToArray()),
                ["auth_events"] = new JsonArray(auth.Select(a => (JsonNode)a).ToArray()),
            };
            if (roomId is not null)
            {
                json["room_id"] = roomId;
            }

            EventHashing.HashAndSign(json, version, "bench.local", Key);
            return Pdu.FromJson(json, version);
        }
    }
}
