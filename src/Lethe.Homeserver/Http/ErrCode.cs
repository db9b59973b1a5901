namespace Lethe.Homeserver.Http;

/// <summary>The Matrix error codes Lethe returns (client-server API "Standard error response").</summary>
public static class ErrCode
{
    /// <summary>Valid JSON with the wrong shape.</summary>
    public const string BadJson = "M_BAD_JSON";

    /// <summary>Not valid JSON.</summary>
    public const string NotJson = "M_NOT_JSON";

    /// <summary>Not allowed.</summary>
    public const string Forbidden = "M_FORBIDDEN";

    /// <summary>Rate limited.</summary>
    public const string LimitExceeded = "M_LIMIT_EXCEEDED";

    /// <summary>No access token.</summary>
    public const string MissingToken = "M_MISSING_TOKEN";

    /// <summary>Unknown or expired access token.</summary>
    public const string UnknownToken = "M_UNKNOWN_TOKEN";

    /// <summary>Nothing there.</summary>
    public const string NotFound = "M_NOT_FOUND";

    /// <summary>Unknown endpoint (404) or wrong method (405).</summary>
    public const string Unrecognized = "M_UNRECOGNIZED";

    /// <summary>Request or entity too large.</summary>
    public const string TooLarge = "M_TOO_LARGE";

    /// <summary>Something went wrong on the server.</summary>
    public const string Unknown = "M_UNKNOWN";

    /// <summary>A parameter has the wrong value.</summary>
    public const string InvalidParam = "M_INVALID_PARAM";

    /// <summary>A required parameter is missing.</summary>
    public const string MissingParam = "M_MISSING_PARAM";

    /// <summary>Authentication failed.</summary>
    public const string Unauthorized = "M_UNAUTHORIZED";

    /// <summary>The user ID is taken.</summary>
    public const string UserInUse = "M_USER_IN_USE";

    /// <summary>The user ID is not valid.</summary>
    public const string InvalidUsername = "M_INVALID_USERNAME";

    /// <summary>The account is deactivated.</summary>
    public const string UserDeactivated = "M_USER_DEACTIVATED";

    /// <summary>Reserved by an application service.</summary>
    public const string Exclusive = "M_EXCLUSIVE";

    /// <summary>Room version not supported.</summary>
    public const string UnsupportedRoomVersion = "M_UNSUPPORTED_ROOM_VERSION";

    /// <summary>Room version of a room being joined is not supported.</summary>
    public const string IncompatibleRoomVersion = "M_INCOMPATIBLE_ROOM_VERSION";

    /// <summary>The requested state change is impossible.</summary>
    public const string BadState = "M_BAD_STATE";

    /// <summary>Guests may not do this.</summary>
    public const string GuestAccessForbidden = "M_GUEST_ACCESS_FORBIDDEN";

    /// <summary>Alias taken at room creation.</summary>
    public const string RoomInUse = "M_ROOM_IN_USE";

    /// <summary>Invalid initial state at room creation.</summary>
    public const string InvalidRoomState = "M_INVALID_ROOM_STATE";

    /// <summary>Key backup version mismatch.</summary>
    public const string WrongRoomKeysVersion = "M_WRONG_ROOM_KEYS_VERSION";

    /// <summary>Server resource limit reached.</summary>
    public const string ResourceLimitExceeded = "M_RESOURCE_LIMIT_EXCEEDED";
}
