using System.Text.Json.Nodes;

namespace Lethe.Homeserver.Push;

/// <summary>What a matched rule asks for: notify or not, highlight, sound, and every tweak (passed to the push gateway as is).</summary>
public sealed class PushActions
{
    /// <summary>No notification.</summary>
    public static readonly PushActions None = new(new JsonArray());

    /// <summary>Parses a validated actions array; the historical <c>dont_notify</c> and <c>coalesce</c> are ignored.</summary>
    public PushActions(JsonArray actions)
    {
        Raw = actions;
        foreach (var a in actions)
        {
            if (a is JsonValue v && v.TryGetValue<string>(out var s))
            {
                Notify |= s == "notify";
            }
            else if (a is JsonObject o && o["set_tweak"] is JsonValue t && t.TryGetValue<string>(out var tweak))
            {
                var value = o.TryGetPropertyValue("value", out var val) ? val?.DeepClone() : null;
                if (tweak == "highlight")
                {
                    Highlight = value is null || (value is JsonValue hv && hv.TryGetValue<bool>(out var h) && h);
                    Tweaks[tweak] = Highlight;
                }
                else
                {
                    Tweaks[tweak] = value;
                    if (tweak == "sound" && value is JsonValue sv && sv.TryGetValue<string>(out var sound))
                    {
                        Sound = sound;
                    }
                }
            }
        }
    }

    /// <summary>The actions as stored.</summary>
    public JsonArray Raw { get; }

    /// <summary>The event notifies.</summary>
    public bool Notify { get; }

    /// <summary>The event is highlighted (only meaningful with <see cref="Notify"/>).</summary>
    public bool Highlight { get; }

    /// <summary>The sound tweak, if any.</summary>
    public string? Sound { get; }

    /// <summary>Every tweak set, for the push gateway.</summary>
    public JsonObject Tweaks { get; } = [];

    /// <summary>The compact outcome stored per user and event: 0 nothing, else 1 notify | 2 highlight | 4 sound.</summary>
    public byte Outcome => _outcome ??= !Notify ? (byte)0 : (byte)(1 | (Highlight ? 2 : 0) | (Sound is not null ? 4 : 0));

    private byte? _outcome;

    /// <summary>Actions rebuilt from a stored outcome (for /notifications).</summary>
    public static JsonArray FromOutcome(byte outcome)
    {
        var actions = new JsonArray();
        if ((outcome & 1) == 0)
        {
            return actions;
        }

        actions.Add((JsonNode)"notify");
        if ((outcome & 4) != 0)
        {
            actions.Add((JsonNode)new JsonObject { ["set_tweak"] = "sound", ["value"] = "default" });
        }

        actions.Add((JsonNode)new JsonObject { ["set_tweak"] = "highlight", ["value"] = (outcome & 2) != 0 });
        return actions;
    }
}
