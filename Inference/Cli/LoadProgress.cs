namespace AspireAi.Inference.Cli;

/// <summary>A progress bar on a terminal; plain lines at every tenth otherwise (logs, pipes, CI).</summary>
public sealed class LoadProgress(string what, TextWriter output) : IProgress<(int Done, int Total)>
{
    private readonly bool _terminal = !Console.IsErrorRedirected;
    private int _lastTenth = -1;

    public void Report((int Done, int Total) value)
    {
        var (done, total) = value;
        if (_terminal)
        {
            const int width = 30;
            var filled = total == 0 ? width : done * width / total;
            output.Write($"\r{what} [{new string('#', filled)}{new string('.', width - filled)}] {done}/{total}");
            if (done == total)
            {
                output.WriteLine();
            }

            return;
        }

        var tenth = total == 0 ? 10 : done * 10 / total;
        if (tenth != _lastTenth)
        {
            _lastTenth = tenth;
            output.WriteLine($"{what}: {done}/{total} tensors");
        }
    }
}
