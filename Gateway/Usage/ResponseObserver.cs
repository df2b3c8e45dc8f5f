using System.Buffers;

namespace AspireAi.Gateway.Usage;

/// <summary>
/// Sits in front of the response body while an upstream answer is forwarded: every write goes straight through (flushes
/// too, so streams are not held back), and on the way it finds the <c>usage</c> — in the JSON body, or in the SSE chunk that
/// carries it — and keeps a copy of the body for the response cache when asked to.
/// </summary>
internal sealed class ResponseObserver(Stream inner, bool keepCopy, int maxCopyBytes) : Stream
{
    // A JSON body is parsed for usage once complete; bodies beyond this are not (usage then counts as unknown, zero).
    private const int MaxJsonBytes = 32 * 1024 * 1024;
    private static ReadOnlySpan<byte> DataPrefix => "data: "u8;
    private static ReadOnlySpan<byte> Done => "[DONE]"u8;
    private static ReadOnlySpan<byte> UsageProperty => "\"usage\""u8;

    private readonly ArrayBufferWriter<byte> _body = new();
    private readonly ArrayBufferWriter<byte> _line = new();
    private bool _tooLarge;

    /// <summary>Whether the body is an SSE stream; decided by the response's content type before the first write.</summary>
    public bool IsEventStream { get; set; }

    public TokenUsage? Usage { get; private set; }

    /// <summary>Whether an SSE stream ended with <c>data: [DONE]</c> (a complete answer, safe to cache and replay).</summary>
    public bool SawDone { get; private set; }

    public long BytesWritten { get; private set; }

    /// <summary>The whole body, when it was kept and not larger than the limit.</summary>
    public ReadOnlyMemory<byte>? Copy => keepCopy && !_tooLarge && _body.WrittenCount <= maxCopyBytes ? _body.WrittenMemory : null;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Observe(buffer.Span);
        await inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        Observe(buffer.AsSpan(offset, count));
        inner.Write(buffer, offset, count);
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    /// <summary>Called once the body is complete: a JSON body's usage is read now.</summary>
    public void Complete()
    {
        if (!IsEventStream && !_tooLarge && _body.WrittenCount > 0)
        {
            Usage = TokenUsage.Find(_body.WrittenSpan);
        }
    }

    private void Observe(ReadOnlySpan<byte> data)
    {
        BytesWritten += data.Length;
        // A JSON body is kept whole for its usage; a stream only when the cache wants a copy (its usage is found line by line).
        var keep = !IsEventStream || keepCopy;
        var limit = IsEventStream ? maxCopyBytes : MaxJsonBytes;
        if (keep && !_tooLarge)
        {
            if (_body.WrittenCount + data.Length > limit)
            {
                _tooLarge = true;
            }
            else
            {
                _body.Write(data);
            }
        }

        if (IsEventStream)
        {
            ScanLines(data);
        }
    }

    /// <summary>Looks at each complete SSE line; only a <c>data:</c> line mentioning <c>"usage"</c> is parsed.</summary>
    private void ScanLines(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var newline = data.IndexOf((byte)'\n');
            if (newline < 0)
            {
                _line.Write(data);
                return;
            }

            ReadOnlySpan<byte> line;
            if (_line.WrittenCount > 0)
            {
                _line.Write(data[..newline]);
                line = _line.WrittenSpan;
            }
            else
            {
                line = data[..newline];
            }

            OnLine(line.TrimEnd((byte)'\r'));
            _line.ResetWrittenCount();
            data = data[(newline + 1)..];
        }
    }

    private void OnLine(ReadOnlySpan<byte> line)
    {
        if (!line.StartsWith(DataPrefix))
        {
            return;
        }

        var payload = line[DataPrefix.Length..];
        if (payload.SequenceEqual(Done))
        {
            SawDone = true;
        }
        else if (payload.IndexOf(UsageProperty) >= 0 && TokenUsage.Find(payload) is { } usage)
        {
            Usage = usage;
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
