using System.Text.Json;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Cli;

/// <summary><c>generate</c>: one prompt in, streamed text (or one JSON object) out.</summary>
public static class GenerateCommand
{
    private static readonly HashSet<string> ValueFlags =
    [
        .. LoadedModel.Flags, "prompt", "prompt-token-ids", "system", "max-tokens", "temperature", "top-k", "top-p", "min-p",
        "repetition-penalty", "presence-penalty", "frequency-penalty", "seed", "output", "top-logprobs", "prompt-logprobs", "stop",
    ];

    private static readonly HashSet<string> Switches = ["chat", "ignore-eos"];

    public static int Run(string[] argv)
    {
        var args = new CommandLine("generate", argv, ValueFlags, Switches);
        if (args.Has("prompt") == args.Has("prompt-token-ids"))
        {
            throw new UsageException("generate: give exactly one of --prompt or --prompt-token-ids.");
        }

        if (args.Has("chat") && !args.Has("prompt"))
        {
            throw new UsageException("generate: --chat needs --prompt (text to put in the user turn).");
        }

        if (args.Has("system") && !args.Has("chat"))
        {
            throw new UsageException("generate: --system needs --chat.");
        }

        var json = args.Choice("output", "text", "text", "json") == "json";
        var sampling = new SamplingParams
        {
            Temperature = args.Float("temperature", 0f, 0f, 100f),
            TopK = args.Int("top-k", 0, 0),
            TopP = Positive(args, "top-p", 1f, 1f),
            MinP = args.Float("min-p", 0f, 0f, 1f),
            RepetitionPenalty = Positive(args, "repetition-penalty", 1f, 100f),
            PresencePenalty = args.Float("presence-penalty", 0f, -2f, 2f),
            FrequencyPenalty = args.Float("frequency-penalty", 0f, -2f, 2f),
            Seed = args.Has("seed") ? args.Int("seed", 0) : null,
        };
        var maxTokens = args.Int("max-tokens", 128, 1);
        var topLogprobs = args.Int("top-logprobs", 0, 0, 100);
        var promptLogprobs = args.Int("prompt-logprobs", 0, 0, 100);
        var promptIds = args.Has("prompt-token-ids") ? args.IntList("prompt-token-ids") : null;

        using var loaded = LoadedModel.Open(args, maxBatchTokens: 256, maxLogitRows: promptLogprobs > 0 ? 256 : 1, needTokenizer: promptIds is null, modelRequired: false);
        var tokenizer = loaded.Tokenizer;
        if (promptIds is null)
        {
            var text = args.RequiredString("prompt");
            if (args.Has("chat"))
            {
                text = ChatPrompt.Render(loaded.Source, tokenizer!, args.String("system"), text);
            }

            // A rendered chat template already starts with its BOS text where the model wants one.
            promptIds = tokenizer!.Encode(text, addSpecial: !args.Has("chat") || !text.StartsWith(TokenText(tokenizer, tokenizer.BosId), StringComparison.Ordinal), parseSpecial: args.Has("chat"));
        }

        var stopIds = args.Has("ignore-eos") || tokenizer is null ? new HashSet<int>() : new HashSet<int>(tokenizer.EndOfGenerationIds);
        var request = new GenerationRequest
        {
            Sampling = sampling,
            MaxTokens = maxTokens,
            StopTokenIds = stopIds,
            StopStrings = args.String("stop") is { } stop ? [stop] : [],
            TopLogprobs = topLogprobs,
            PromptLogprobs = promptLogprobs,
        };

        using var generator = new Generator(loaded.Model, tokenizer, kvCacheDtype: loaded.KvCacheDtype);
        var stdout = Console.Out;
        var result = generator.Generate(promptIds, request, json ? null : t =>
        {
            stdout.Write(t.Text);
            stdout.Flush();
        });

        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(ToJson(result)));
        }
        else
        {
            stdout.WriteLine();
        }

        return 0;
    }

    private static float Positive(CommandLine args, string name, float fallback, float max)
    {
        var value = args.Float(name, fallback, 0f, max);
        return value > 0 ? value : throw new UsageException($"generate: --{name} must be in (0, {max}], not 0.");
    }

    private static string TokenText(Tokenization.ITokenizer tokenizer, int id) =>
        id < 0 ? "\0" : tokenizer.TokenToPiece(id) is { Length: > 0 } piece ? piece : "\0";

    private static Dictionary<string, object?> ToJson(GenerationResult result)
    {
        static object[][] Shape(IReadOnlyList<TokenLogprob[]> rows) =>
            rows.Select(row => row.Select(t => (object)new Dictionary<string, object> { ["id"] = t.Id, ["logprob"] = t.Logprob }).ToArray()).ToArray();

        var json = new Dictionary<string, object?>
        {
            ["prompt_token_ids"] = result.PromptTokenIds,
            ["token_ids"] = result.TokenIds,
            ["text"] = result.Text,
            ["finish_reason"] = result.FinishReason,
        };
        if (result.TopLogprobs is not null)
        {
            json["top_logprobs"] = Shape(result.TopLogprobs);
        }

        if (result.PromptLogprobs is not null)
        {
            json["prompt_logprobs"] = Shape(result.PromptLogprobs);
        }

        return json;
    }
}
