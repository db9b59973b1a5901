namespace Lethe.Homeserver.Relations;

/// <summary>The relation types the spec defines (<c>m.relates_to.rel_type</c>).</summary>
public static class RelationTypes
{
    /// <summary>A reply in a thread; the parent is the thread root.</summary>
    public const string Thread = "m.thread";

    /// <summary>An edit of the parent.</summary>
    public const string Replace = "m.replace";

    /// <summary>An annotation (reaction) of the parent, with a key.</summary>
    public const string Annotation = "m.annotation";

    /// <summary>A generic reference to the parent.</summary>
    public const string Reference = "m.reference";
}
