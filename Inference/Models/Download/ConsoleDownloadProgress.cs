namespace AspireAi.Inference.Models.Download;

/// <summary>
/// Shows <see cref="DownloadProgress"/> as a redrawn progress bar when the output is a terminal, and as plain lines at every
/// tenth otherwise (logs, pipes, CI), so a log gets a dozen lines rather than thousands.
/// </summary>
public sealed class ConsoleDownloadProgress : IProgress<DownloadProgress>
{
    private const int BarWidth = 30;
    private readonly TextWriter _output;
    private readonly bool _terminal;
    private readonly Lock _lock = new();
    private string? _stage;
    private int _lastTenth = -1;
    private long _lastUnknownReport;

    /// <param name="output">Usually <see cref="Console.Error"/>, so progress never mixes with generated text on stdout.</param>
    /// <param name="isTerminal">Defaults to whether stderr is a terminal.</param>
    public ConsoleDownloadProgress(TextWriter output, bool? isTerminal = null)
    {
        _output = output;
        _terminal = isTerminal ?? !Console.IsErrorRedirected;
    }

    public void Report(DownloadProgress value)
    {
        lock (_lock)
        {
            if (value.Stage != _stage)
            {
                _stage = value.Stage;
                _lastTenth = -1;
                _lastUnknownReport = 0;
            }

            if (_terminal)
            {
                DrawBar(value);
            }
            else
            {
                WriteLine(value);
            }
        }
    }

    private void DrawBar(DownloadProgress value)
    {
        if (value.Total is not > 0)
        {
            _output.Write($"\r{value.Stage}: {Amount(value.Done, value.Unit)}");
            return;
        }

        var total = value.Total.Value;
        var filled = (int)(Math.Min(value.Done, total) * BarWidth / total);
        _output.Write($"\r{value.Stage} [{new string('#', filled)}{new string('.', BarWidth - filled)}] {Percent(value.Done, total),3}% {Amount(value.Done, value.Unit)} / {Amount(total, value.Unit)}");
        if (value.Done >= total)
        {
            _output.WriteLine();
        }
    }

    private void WriteLine(DownloadProgress value)
    {
        if (value.Total is not > 0)
        {
            // Unknown size: a line per 10 MB (or per 10 tensors).
            var step = value.Unit == "bytes" ? 10L << 20 : 10;
            if (value.Done - _lastUnknownReport >= step || _lastUnknownReport == 0)
            {
                _lastUnknownReport = Math.Max(value.Done, 1);
                _output.WriteLine($"{value.Stage}: {Amount(value.Done, value.Unit)}");
            }

            return;
        }

        var tenth = (int)(Math.Min(value.Done, value.Total.Value) * 10 / value.Total.Value);
        if (tenth > _lastTenth)
        {
            _lastTenth = tenth;
            _output.WriteLine($"{value.Stage}: {Percent(value.Done, value.Total.Value)}% ({Amount(value.Done, value.Unit)} of {Amount(value.Total.Value, value.Unit)})");
        }
    }

    private static long Percent(long done, long total) => Math.Min(done, total) * 100 / total;

    private static string Amount(long n, string unit) => unit == "bytes"
        ? n >= 1 << 20 ? $"{n / (double)(1 << 20):0.0} MiB" : $"{n / 1024.0:0.0} KiB"
        : $"{n} {unit}";
}
