namespace AspireAi.Inference.Engine;

/// <summary>
/// Finds stop strings in streamed text. Text that could still turn out to be the start of a stop string is held back, so
/// a stop string is never emitted, even when it arrives split across tokens.
/// </summary>
public sealed class StopStringMatcher(IReadOnlyList<string> stops)
{
    private readonly System.Text.StringBuilder _pending = new();

    public bool Stopped { get; private set; }

    /// <summary>Adds <paramref name="text"/>; returns what can be emitted now (all of it up to a stop string once one is found).</summary>
    public string Push(string text)
    {
        if (Stopped)
        {
            return "";
        }

        _pending.Append(text);
        if (stops.Count == 0)
        {
            return Take(_pending.Length);
        }

        var pending = _pending.ToString();
        var first = -1;
        foreach (var stop in stops)
        {
            var at = stop.Length == 0 ? -1 : pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first))
            {
                first = at;
            }
        }

        if (first >= 0)
        {
            Stopped = true;
            var emitted = pending[..first];
            _pending.Clear();
            return emitted;
        }

        var hold = 0;
        foreach (var stop in stops)
        {
            for (var n = Math.Min(stop.Length - 1, pending.Length); n > hold; n--)
            {
                if (pending.AsSpan(pending.Length - n).SequenceEqual(stop.AsSpan(0, n)))
                {
                    hold = n;
                    break;
                }
            }
        }

        return Take(pending.Length - hold);
    }

    /// <summary>Everything still held back (generation ended without completing a stop string).</summary>
    public string Flush() => Stopped ? "" : Take(_pending.Length);

    private string Take(int length)
    {
        var text = _pending.ToString(0, length);
        _pending.Remove(0, length);
        return text;
    }
}
