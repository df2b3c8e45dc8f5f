using AspireAi.Inference.Models;

namespace AspireAi.Inference.Cli;

/// <summary>
/// Verb dispatch: <c>serve</c> (also when no verb is given, as the AppHost starts the project), <c>generate</c>,
/// <c>tokenize</c>, <c>bench</c>, <c>perplexity</c>, <c>bench-serve</c>. A wrong command line prints one line and exits with 2.
/// </summary>
public static class CliApp
{
    private static readonly Dictionary<string, Func<string[], int>> Verbs = new(StringComparer.Ordinal)
    {
        ["serve"] = ServeCommand.Run,
        ["generate"] = GenerateCommand.Run,
        ["tokenize"] = TokenizeCommand.Run,
        ["bench"] = BenchCommand.Run,
        ["perplexity"] = PerplexityCommand.Run,
        ["bench-serve"] = BenchServeCommand.Run,
    };

    public static int Run(string[] args)
    {
        Func<string[], int> verb;
        if (args.Length == 0 || args[0].StartsWith('-'))
        {
            (verb, args) = (ServeCommand.Run, ["serve", .. args]);
        }
        else if (!Verbs.TryGetValue(args[0], out verb!))
        {
            Console.Error.WriteLine($"error: unknown command '{args[0]}' (commands: {string.Join(", ", Verbs.Keys)}).");
            return 2;
        }

        try
        {
            return verb(args[1..]);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is ModelFormatException or InvalidDataException or FileNotFoundException or ArgumentException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
