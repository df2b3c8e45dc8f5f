using AspireAi.Inference.Backends;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Download;

namespace AspireAi.Inference.Cli;

/// <summary>
/// <c>perplexity --model PATH --file TEXT [--ctx N] [--max-chunks N]</c>, computed as <c>llama-perplexity</c> does (its
/// default mode, <c>tools/perplexity/perplexity.cpp</c>): the whole text is tokenized once with BOS prepended when the model
/// adds BOS, cut into chunks of <c>ctx</c> tokens (the remainder dropped), each chunk's first token replaced by BOS (again
/// only when the model adds BOS) and evaluated on an empty cache, and the logits at positions <c>ctx/2</c> … <c>ctx-2</c>
/// scored against the next token, so every scored token has at least half a context before it. Prints the running
/// estimate per chunk and <c>Final estimate: PPL = X +/- U</c>, U being llama.cpp's uncertainty (the standard error of the
/// mean negative log-likelihood, times the perplexity).
/// </summary>
public static class PerplexityCommand
{
    public static int Run(string[] argv)
    {
        var args = new CommandLine("perplexity", argv, new HashSet<string>([.. LoadedModel.Flags, "file", "ctx", "max-chunks"]));
        var typed = args.RequiredString("file");
        var path = UserPath.Find(typed) is { } found && File.Exists(found)
            ? found
            : throw new UsageException($"perplexity: --file '{typed}' does not exist{UserPath.Searched(typed)}.");

        using var loaded = LoadedModel.Open(args, maxBatchTokens: 4096, maxLogitRows: 4096, needTokenizer: true);
        var model = loaded.Model;
        var config = model.Config;
        var ctx = args.Int("ctx", config.ContextLength, 8, config.ContextLength);
        if (ctx > model.MaxBatchTokens)
        {
            throw new UsageException($"perplexity: --ctx {ctx} exceeds the {model.MaxBatchTokens} tokens one step can carry.");
        }

        var tokenizer = loaded.Tokenizer!;
        var text = tokenizer.Encode(File.ReadAllText(path), addSpecial: false);
        var addBos = tokenizer.AddBos;
        int[] tokens = addBos ? [tokenizer.BosId, .. text] : text;
        if (tokens.Length < 2 * ctx)
        {
            // llama.cpp's minimum, kept so that the same file and context give a number on both or on neither.
            throw new UsageException($"perplexity: the file has {tokens.Length} tokens; a context of {ctx} needs at least {2 * ctx} (two chunks): give a longer file or a smaller --ctx.");
        }

        var chunks = Math.Min(tokens.Length / ctx, args.Int("max-chunks", int.MaxValue, 1));

        const int blockSize = 16;
        var blocks = (ctx + blockSize - 1) / blockSize;
        using var cache = model.CreateKvCache(model.KvCacheShape(blockSize, blocks, loaded.KvCacheDtype));
        var pool = new KvBlockPool(blocks, blockSize);
        var batch = new ForwardBatch(ctx, 1, blocks);
        var vocabulary = config.VocabularySize;
        var logits = new float[ctx * vocabulary];
        double nll = 0, nll2 = 0;
        var scored = 0;
        Console.WriteLine($"perplexity: {tokens.Length} tokens, {chunks} chunks of {ctx}, scoring the second half of each");
        for (var c = 0; c < chunks; c++)
        {
            var sequence = new SequenceBlocks(pool);
            sequence.TryReserve(ctx);
            batch.Clear();
            batch.AddSequence(sequence.Blocks.ToArray());
            for (var p = 0; p < ctx; p++)
            {
                var id = p == 0 && addBos ? tokenizer.BosId : tokens[c * ctx + p];
                batch.AddToken(id, p, 0, sequence.Slot(p), needsLogits: true);
            }

            model.Forward(batch, cache, logits);
            for (var p = ctx / 2; p < ctx - 1; p++)
            {
                var row = logits.AsSpan(p * vocabulary, vocabulary);
                var tokenNll = Logprobs.LogSumExp(row) - row[tokens[c * ctx + p + 1]];
                nll += tokenNll;
                nll2 += tokenNll * tokenNll;
                scored++;
            }

            sequence.Release();
            Console.WriteLine(FormattableString.Invariant($"[{c + 1}] {Math.Exp(nll / scored):F4}"));
        }

        var mean = nll / scored;
        var ppl = Math.Exp(mean);
        var variance = nll2 / scored - mean * mean;
        var uncertainty = variance > 0 && scored > 1 ? Math.Sqrt(variance / (scored - 1)) * ppl : 0;
        Console.WriteLine(FormattableString.Invariant($"Final estimate: PPL = {ppl:F4} +/- {uncertainty:F5} over {scored} tokens"));
        return 0;
    }
}
