namespace Lethe.Homeserver.Configuration;

/// <summary>The configuration cannot be used; the message names the key and the problem. The server refuses to start.</summary>
public sealed class ConfigException(string key, string problem) : Exception($"{key}: {problem}")
{
    /// <summary>The offending key as a path, e.g. <c>listeners[0].port</c>.</summary>
    public string Key { get; } = key;
}
