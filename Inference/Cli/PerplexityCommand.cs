using AspireAi.Inference.Backends;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Cli;

/// <summary>
/// <c>perplexity --model PATH --file TEXT [--ctx N]</c>, like <c>llama-perplexity</c>: the text's tokens in chunks of the
/// context length, each chunk starting with BOS, the second half of each chunk scored (so every scored token has at least
/// half a context before it); prints the running estimate per chunk and the final perplexity.
/// </summary>
public static class PerplexityCommand
{
    public static int Run(string[] argv)
    {
        var args = new CommandLine("perplexity", argv, new HashSet<string>([.. LoadedModel.Flags, "file", "ctx", "max-chunks"]));
        var path = args.RequiredString("file");
        if (!File.Exists(path))
        {
            throw new UsageException($"perplexity: --file '{path}' does not exist.");
        }

        using var loaded = LoadedModel.Open(args, maxBatchTokens: 4096, maxLogitRows: 4096, needTokenizer: true);
        var model = loaded.Model;
        var config = model.Config;
        var ctx = args.Int("ctx", config.ContextLength, 8, config.ContextLength);
        if (ctx > model.MaxBatchTokens)
        {
            throw new UsageException($"perplexity: --ctx {ctx} exceeds the {model.MaxBatchTokens} tokens one step can carry.");
        }

        var tokens = loaded.Tokenizer!.Encode(File.ReadAllText(path), addSpecial: false);
        var chunks = Math.Min(tokens.Length / ctx, args.Int("max-chunks", int.MaxValue, 1));
        if (chunks == 0)
        {
            throw new UsageException($"perplexity: the file has {tokens.Length} tokens, fewer than one chunk of {ctx}.");
        }

        const int blockSize = 16;
        var blocks = (ctx + blockSize - 1) / blockSize;
        using var cache = model.Backend.CreateKvCache(model.KvCacheShape(blockSize, blocks));
        var pool = new KvBlockPool(blocks, blockSize);
        var batch = new ForwardBatch(ctx, 1, blocks);
        var vocabulary = config.VocabularySize;
        var logits = new float[ctx * vocabulary];
        double nll = 0;
        var scored = 0;
        var bos = loaded.Tokenizer.BosId;
        Console.WriteLine($"perplexity: {tokens.Length} tokens, {chunks} chunks of {ctx}, scoring the second half of each");
        for (var c = 0; c < chunks; c++)
        {
            var sequence = new SequenceBlocks(pool);
            sequence.TryReserve(ctx);
            batch.Clear();
            batch.AddSequence(sequence.Blocks.ToArray());
            for (var p = 0; p < ctx; p++)
            {
                var id = p == 0 && bos >= 0 ? bos : tokens[c * ctx + p];
                batch.AddToken(id, p, 0, sequence.Slot(p), needsLogits: true);
            }

            model.Forward(batch, cache, logits);
            for (var p = ctx / 2; p < ctx - 1; p++)
            {
                var row = logits.AsSpan(p * vocabulary, vocabulary);
                nll += Logprobs.LogSumExp(row) - row[tokens[c * ctx + p + 1]];
                scored++;
            }

            sequence.Release();
            Console.WriteLine($"[{c + 1}] {Math.Exp(nll / scored):F4}");
        }

        Console.WriteLine($"Final estimate: PPL = {Math.Exp(nll / scored):F4} over {scored} tokens");
        return 0;
    }
}
