using System.Security.Cryptography;

namespace AspireAi.ServiceDefaults;

/// <summary>
/// The ids of the Batch API's files and batches, a contract between Inference (which makes them) and the gateway (which
/// routes by them): <c>{prefix}{key}-{replica}</c>, e.g. <c>batch_0193f1c2a4b5e8d2c1a90b7f-3fa9b1c2</c>.
/// <list type="bullet">
/// <item><c>key</c>: 24 hex digits, the creation time in Unix milliseconds (12) then 48 random bits (12). Keys sort as
/// creation times do, so a list merged from several replicas has one order, and a page cursor (<c>after</c>) from any
/// replica can be compared on every other one without looking the id up.</item>
/// <item><c>replica</c>: 8 hex digits naming the Inference replica that holds the object (made once per state folder, see
/// <see cref="NewReplicaTag"/>), so the gateway sends later calls for the id to that replica without keeping a map of ids:
/// a file, the batch made from it and the batch's output files all live in one replica's state folder.</item>
/// </list>
/// Batch output files are named after their batch (<c>file-out-{key}-{replica}</c>, <c>file-err-…</c>).
/// </summary>
public static class BatchIds
{
    /// <summary>The response header in which Inference names its replica tag (the gateway learns addresses from it).</summary>
    public const string ReplicaHeader = "X-AspireAi-Replica";

    public const string BatchPrefix = "batch_";
    public const string FilePrefix = "file-";
    public const string OutputFilePrefix = "file-out-";
    public const string ErrorFilePrefix = "file-err-";

    private const int KeyLength = 24;
    private const int TagLength = 8;

    // Longest first: "file-out-…" must not be read as "file-" with key "out-…".
    private static readonly string[] Prefixes = [BatchPrefix, OutputFilePrefix, ErrorFilePrefix, FilePrefix];

    /// <summary>A new id under <paramref name="prefix"/> for the replica <paramref name="replicaTag"/>, keyed by <paramref name="now"/>.</summary>
    public static string New(string prefix, string replicaTag, DateTimeOffset now)
    {
        Span<byte> random = stackalloc byte[6];
        RandomNumberGenerator.Fill(random);
        return $"{prefix}{now.ToUnixTimeMilliseconds():x12}{Convert.ToHexStringLower(random)}-{replicaTag}";
    }

    /// <summary>A replica tag: 32 random bits, so that two replicas' tags collide with odds of one in four billion.</summary>
    public static string NewReplicaTag() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(TagLength / 2));

    public static bool IsReplicaTag(string? tag) => tag is { Length: TagLength } && tag.All(char.IsAsciiHexDigitLower);

    /// <summary>Reads the sort key and replica tag of <paramref name="id"/>; false for ids of another shape (made before tags).</summary>
    public static bool TryParse(string? id, out string key, out string replicaTag)
    {
        (key, replicaTag) = ("", "");
        if (id is null || Prefixes.FirstOrDefault(p => id.StartsWith(p, StringComparison.Ordinal)) is not { } prefix)
        {
            return false;
        }

        var rest = id.AsSpan(prefix.Length);
        if (rest.Length != KeyLength + 1 + TagLength || rest[KeyLength] != '-'
            || !rest[..KeyLength].ContainsOnlyLowerHex() || !rest[(KeyLength + 1)..].ContainsOnlyLowerHex())
        {
            return false;
        }

        (key, replicaTag) = (rest[..KeyLength].ToString(), rest[(KeyLength + 1)..].ToString());
        return true;
    }

    /// <summary>
    /// The position of an object in a list, newest first: its id's key, or for an id made before keys existed its creation
    /// time (seconds) in the same form, so old objects still sort by time.
    /// </summary>
    public static string SortKey(string id, long createdAt) =>
        TryParse(id, out var key, out _) ? key : $"{createdAt * 1000:x12}000000000000";

    private static bool ContainsOnlyLowerHex(this ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (!char.IsAsciiHexDigitLower(c))
            {
                return false;
            }
        }

        return true;
    }
}
