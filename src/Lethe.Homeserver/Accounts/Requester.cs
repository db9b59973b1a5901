namespace Lethe.Homeserver.Accounts;

/// <summary>Who made an authenticated request: the user, the device their token is bound to, and the token (by hash).</summary>
public sealed record Requester(string UserId, string DeviceId, string TokenHash, bool IsAdmin, bool IsGuest);
