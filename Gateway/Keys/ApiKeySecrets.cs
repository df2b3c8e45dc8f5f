using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace AspireAi.Gateway.Keys;

/// <summary>
/// Making and hashing API key secrets. A key is <c>sk-</c> and 32 random bytes (256 bits) in base64url. Only its SHA-256 is
/// stored. A slow password hash (bcrypt, Argon2) exists to make guessing low-entropy passwords expensive; nobody can guess
/// one of 2^256 keys, so a fast hash loses nothing and lets every request be checked by one indexed lookup in microseconds.
/// </summary>
internal static class ApiKeySecrets
{
    public const string Prefix = "sk-";

    public static string NewSecret() => Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    /// <summary>What listings show of a key: the prefix and four characters, enough to tell keys apart, useless to an attacker.</summary>
    public static string Hint(string secret) => secret[..(Prefix.Length + 4)] + "…";

    public static string NewId() => "key_" + Guid.CreateVersion7().ToString("N");
}
