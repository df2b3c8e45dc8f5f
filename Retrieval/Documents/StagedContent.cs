using System.Security.Cryptography;

namespace AspireAi.Retrieval.Documents;

/// <summary>
/// A submitted document's bytes, streamed into a temporary file (never held whole in memory) while its SHA-256 is
/// computed and its size checked; deleted on dispose.
/// </summary>
internal sealed class StagedContent : IAsyncDisposable
{
    private const int HeadLength = 512;

    private StagedContent(string path, long length, string sha256, byte[] head, string? fileName, string? declaredType)
    {
        (FilePath, Length, Sha256, Head, FileName, DeclaredType) = (path, length, sha256, head, fileName, declaredType);
    }

    public string FilePath { get; }

    public long Length { get; }

    /// <summary>Lower-case hex SHA-256 of the bytes.</summary>
    public string Sha256 { get; }

    /// <summary>The first bytes, for telling the type when none is declared.</summary>
    public byte[] Head { get; }

    public string? FileName { get; }

    public string? DeclaredType { get; }

    /// <summary>The same staged file with a type declared by a separate form field (the file itself is kept).</summary>
    public StagedContent WithDeclaredType(string declaredType) => new(FilePath, Length, Sha256, Head, FileName, declaredType);

    public Stream OpenRead() => new FileStream(FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.SequentialScan);

    /// <exception cref="DocumentException">413 when the content exceeds <paramref name="maxBytes"/>; 400 when it is empty.</exception>
    public static async Task<StagedContent> FromStreamAsync(Stream source, long maxBytes, string? fileName, string? declaredType, string param,
        CancellationToken ct)
    {
        var path = Path.Combine(Path.GetTempPath(), $"aspireai-retrieval-{Guid.NewGuid():N}");
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var head = new List<byte>(HeadLength);
            long length = 0;
            await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
            {
                var buffer = new byte[64 * 1024];
                int read;
                while ((read = await source.ReadAsync(buffer, ct)) > 0)
                {
                    length += read;
                    if (length > maxBytes)
                    {
                        throw new DocumentException(413, $"The document is larger than the limit of {maxBytes} bytes (Retrieval:MaxDocumentBytes).", param);
                    }

                    hash.AppendData(buffer, 0, read);
                    head.AddRange(buffer.AsSpan(0, Math.Min(read, HeadLength - head.Count)));
                    await file.WriteAsync(buffer.AsMemory(0, read), ct);
                }
            }

            if (length == 0)
            {
                throw new DocumentException(400, "The document is empty.", param);
            }

            return new StagedContent(path, length, Convert.ToHexStringLower(hash.GetHashAndReset()), [.. head], fileName, declaredType);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    public ValueTask DisposeAsync()
    {
        File.Delete(FilePath);
        return ValueTask.CompletedTask;
    }
}
