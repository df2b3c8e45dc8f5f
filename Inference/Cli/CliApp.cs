using AspireAi.Inference.Models;

namespace AspireAi.Inference.Cli;

/// <summary>
/// Verb dispatch: <c>serve</c> (also when no verb is given, as the AppHost starts the project), <c>generate</c>,
/// <c>tokenize</c>, <c>bench</c>, <c>perplexity</c>, <c>bench-serve</c>. A wrong command line prints one line and exits with 2.
/// </summary>
public static class CliApp
{
    private static readonly Dictionary<string, (Func<string[], int> Run, string Summary)> Verbs = new(StringComparer.Ordinal)
    {
        ["serve"] = (ServeCommand.Run, "the OpenAI-compatible server (the default when no verb is given)"),
        ["generate"] = (GenerateCommand.Run, "one completion of --prompt (or --prompt-token-ids) on the command line"),
        ["tokenize"] = (TokenizeCommand.Run, "the token ids of --text under --model's tokenizer, as JSON"),
        ["bench"] = (BenchCommand.Run, "prefill and decode speed of --model (llama-bench's measurement)"),
        ["perplexity"] = (PerplexityCommand.Run, "perplexity of --model over a text --file (llama-perplexity's measurement)"),
        ["bench-serve"] = (BenchServeCommand.Run, "the serving engine under a request workload (vLLM's benchmark_serving)"),
    };

    public static int Run(string[] args)
    {
        if (args is ["help"] || args.Length == 1 && HelpRequestedException.IsHelp(args[0]))
        {
            Console.WriteLine("usage: inference [VERB] [--flag value ...]   (from the repository: dotnet run --project Inference -- VERB ...)");
            foreach (var (name, verb) in Verbs)
            {
                Console.WriteLine($"  {name,-12} {verb.Summary}");
            }

            Console.WriteLine("VERB --help lists a verb's flags; README.md and docs/ describe them.");
            return 0;
        }

        Func<string[], int> run;
        if (args.Length == 0 || args[0].StartsWith('-'))
        {
            (run, args) = (ServeCommand.Run, ["serve", .. args]);
        }
        else if (Verbs.TryGetValue(args[0], out var verb))
        {
            run = verb.Run;
        }
        else
        {
            Console.Error.WriteLine($"error: unknown command '{args[0]}' (commands: {string.Join(", ", Verbs.Keys)}; --help describes them).");
            return 2;
        }

        try
        {
            return run(args[1..]);
        }
        catch (HelpRequestedException help)
        {
            Console.WriteLine(help.Usage);
            return 0;
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
