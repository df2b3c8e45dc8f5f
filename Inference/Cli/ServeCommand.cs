using AspireAi.Inference.Embeddings;
using AspireAi.Inference.Serving;

namespace AspireAi.Inference.Cli;

/// <summary>
/// <c>serve</c> (the default verb, as the AppHost starts the project without arguments): the web host. Each flag is a
/// configuration key of the <c>Inference</c> section (<c>--kv-cache-tokens 4096</c> ≡ <c>Inference:KvCacheTokens=4096</c>);
/// <c>--urls</c> and any <c>--Section:Key=value</c> go to ASP.NET Core as they are.
/// </summary>
public static class ServeCommand
{
    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        ["model"] = nameof(InferenceOptions.Model),
        ["served-model-name"] = nameof(InferenceOptions.ServedModelName),
        ["device"] = nameof(InferenceOptions.Device),
        ["quantize"] = nameof(InferenceOptions.Quantize),
        ["threads"] = nameof(InferenceOptions.Threads),
        ["tensor-parallel-size"] = nameof(InferenceOptions.TensorParallelSize),
        ["block-size"] = nameof(InferenceOptions.BlockSize),
        ["kv-cache-tokens"] = nameof(InferenceOptions.KvCacheTokens),
        ["kv-offload-tokens"] = nameof(InferenceOptions.KvOffloadTokens),
        ["kv-cache-fraction"] = nameof(InferenceOptions.KvCacheFraction),
        ["kv-cache-dtype"] = nameof(InferenceOptions.KvCacheDtype),
        ["max-batched-tokens"] = nameof(InferenceOptions.MaxBatchedTokens),
        ["max-num-seqs"] = nameof(InferenceOptions.MaxNumSeqs),
        ["max-waiting"] = nameof(InferenceOptions.MaxWaiting),
        ["max-running-per-tenant"] = nameof(InferenceOptions.MaxRunningPerTenant),
        ["batch-share"] = nameof(InferenceOptions.BatchShare),
        ["batch-step-tokens"] = nameof(InferenceOptions.BatchStepTokens),
        ["enforce-eager"] = nameof(InferenceOptions.EnforceEager),
        ["chat-template"] = nameof(InferenceOptions.ChatTemplate),
        ["max-request-body-bytes"] = nameof(InferenceOptions.MaxRequestBodyBytes),
        ["state-dir"] = nameof(InferenceOptions.StateDir),
    };

    /// <summary>Flags that may stand alone, meaning true (<c>--enforce-eager</c>); <c>--enforce-eager false</c> works too.</summary>
    private static readonly HashSet<string> Switches = new(StringComparer.Ordinal) { "enforce-eager" };

    public static int Run(string[] args)
    {
        using var app = Build(args);
        app.Run();
        return 0;
    }

    /// <summary>The serving host for <paramref name="args"/>, with the model loaded (tests start it on a free port).</summary>
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(TranslateFlags(args));
        builder.AddServiceDefaults();
        builder.AddInferenceServing();
        builder.AddEmbeddings();

        var app = builder.Build();
        app.UseOpenAiErrors();
        app.UseVllmMetricNames();
        app.MapDefaultEndpoints();
        app.MapModelEndpoints();
        app.MapInferenceEndpoints();
        app.MapEmbeddingEndpoints();
        return app;
    }

    /// <summary>Our kebab-case flags become <c>--Inference:Key=value</c>; everything ASP.NET Core knows passes through.</summary>
    internal static string[] TranslateFlags(string[] args)
    {
        var result = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (HelpRequestedException.IsHelp(arg))
            {
                throw new HelpRequestedException("serve", Flags.Keys.Except(Switches).Append("urls"), Switches);
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"serve: unexpected argument '{arg}' (flags start with --).");
            }

            var name = arg[2..];
            string? value = null;
            if (name.IndexOf('=') is var eq and >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }

            if (value is null && Switches.Contains(name) && (i + 1 >= args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal)))
            {
                value = "true";
            }

            if (value is null)
            {
                if (i + 1 >= args.Length)
                {
                    throw new UsageException($"serve: --{name} needs a value.");
                }

                value = args[++i];
            }

            if (Flags.TryGetValue(name, out var key))
            {
                result.Add($"--{InferenceOptions.Section}:{key}={value}");
            }
            // WebApplicationFactory (the gateway tests host this app with it) passes its settings flattened, section nodes
            // included ("--Inference="), plus the host's applicationName: both are configuration, not typos.
            else if (name is "urls" or "environment" or "contentRoot" or "applicationName" || name.Contains(':')
                     || name == InferenceOptions.Section && value.Length == 0)
            {
                result.Add($"--{name}={value}");
            }
            else
            {
                throw new UsageException($"serve: unknown flag --{name} (known: {string.Join(", ", Flags.Keys.Append("urls").Order().Select(f => "--" + f))}).");
            }
        }

        return [.. result];
    }
}
