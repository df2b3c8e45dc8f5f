using System.Buffers.Binary;
using System.Text;

namespace AspireAi.Gateway.Caching;

/// <summary>
/// A cached upstream answer, byte for byte: a JSON body, or a complete SSE stream (ending in <c>data: [DONE]</c>) that is
/// replayed as it was sent. Stored in Redis as <c>[content-type length][content-type][body]</c>.
/// </summary>
internal sealed record CachedResponse(string ContentType, ReadOnlyMemory<byte> Body)
{
    public byte[] Serialize()
    {
        var type = Encoding.UTF8.GetBytes(ContentType);
        var blob = new byte[2 + type.Length + Body.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(blob, (ushort)type.Length);
        type.CopyTo(blob, 2);
        Body.Span.CopyTo(blob.AsSpan(2 + type.Length));
        return blob;
    }

    public static CachedResponse? Deserialize(ReadOnlyMemory<byte> blob)
    {
        if (blob.Length < 2)
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt16LittleEndian(blob.Span);
        return blob.Length < 2 + length ? null : new CachedResponse(Encoding.UTF8.GetString(blob.Span.Slice(2, length)), blob[(2 + length)..]);
    }

    public async Task WriteAsync(HttpResponse response, CancellationToken ct)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        response.ContentLength = Body.Length;
        await response.Body.WriteAsync(Body, ct);
    }
}
