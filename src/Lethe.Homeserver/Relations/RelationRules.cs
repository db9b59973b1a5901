using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Rooms;
using Lethe.Storage;

namespace Lethe.Homeserver.Relations;

/// <summary>
/// The checks a server makes on a relation a local client sends, where the spec asks for them: no second identical
/// annotation ("Avoiding duplicate annotations"), no thread rooted at an event that has a relation ("Validation of
/// m.thread relationships"), plus Synapse's sanity checks (parent in the same room, annotation key present and short).
/// Everything else (an edit of another user's event, say) is accepted and simply not aggregated.
/// </summary>
public static class RelationRules
{
    /// <summary>The error code for a repeated annotation.</summary>
    public const string DuplicateAnnotation = "M_DUPLICATE_ANNOTATION";

    /// <summary>Longest annotation key accepted, in characters (as Synapse).</summary>
    public const int MaxKeyLength = 500;

    /// <summary>Throws 400 when the relation in <paramref name="content"/> must be refused; returns when there is none or it is acceptable.</summary>
    public static async Task ValidateAsync(HomeserverServices hs, string roomId, string sender, string type, JsonObject content, CancellationToken ct)
    {
        if (Relation.Of(content) is not { } relation)
        {
            return;
        }

        var store = new RelationStore(hs.Database);
        var parent = await hs.Events.GetAsync(relation.EventId, ct);
        if (parent is not null && parent.Row.RoomId != roomId)
        {
            throw MatrixException.Of(400, ErrCode.Unknown, "Relations must be in the same room");
        }

        // A client can know of an event this server lacks only through other events relating to it.
        if (parent is null && !await store.IsRelationTargetAsync(relation.EventId, ct))
        {
            throw MatrixException.Of(400, ErrCode.Unknown, "Can't send relation to unknown event");
        }

        switch (relation.RelType)
        {
            case RelationTypes.Annotation:
                if (relation.Key is not { } key)
                {
                    throw MatrixException.Of(400, ErrCode.Unknown, "Missing annotation key");
                }

                if (key.Length > MaxKeyLength)
                {
                    throw MatrixException.Of(400, ErrCode.Unknown, "Annotation key is too long");
                }

                if (await store.HasAnnotatedAsync(relation.EventId, type, key, sender, ct))
                {
                    throw MatrixException.Of(400, DuplicateAnnotation, "Can't send the same annotation twice");
                }

                break;
            case RelationTypes.Thread when parent is not null && Relation.Of(parent.Pdu.Content) is not null:
                throw MatrixException.Of(400, ErrCode.Unknown, "Cannot start threads from an event with a relation");
        }
    }
}
