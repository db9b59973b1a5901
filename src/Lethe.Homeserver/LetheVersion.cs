using System.Reflection;

namespace Lethe.Homeserver;

/// <summary>The running build's version string.</summary>
public static class LetheVersion
{
    /// <summary>Informational version of the Lethe.Homeserver assembly, without build metadata.</summary>
    public static readonly string Current =
        (typeof(LetheVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0").Split('+')[0];
}
