using AspireAi.Inference.Models.Gguf;

namespace AspireAi.Inference.Models.Llama2c;

/// <summary>
/// Converts a legacy llama2.c checkpoint and its <c>tokenizer.bin</c> into a GGUF v3 F32 <c>llama</c> model, laid out as
/// llama.cpp's converters write one (the metadata keys, their order and the tensor order of the shared stories15M files).
/// No q/k permutation: llama2.c already rotates adjacent pairs, as GGUF's llama layout does.
/// </summary>
public static class Llama2cConverter
{
    // llama2.c's run.c hard-codes these; they are not in the checkpoint.
    private const float RmsNormEpsilon = 1e-5f;
    private const float RopeTheta = 10000f;
    private const int CopyBufferBytes = 1 << 20;

    /// <summary>
    /// Writes <paramref name="outputPath"/> from the two llama2.c files, through <c>outputPath.tmp</c> renamed at the end, so a
    /// failed or interrupted conversion never leaves a half-written model under the final name.
    /// </summary>
    /// <param name="modelName">Stored as <c>general.name</c>.</param>
    /// <param name="progress">Tensors written so far, of the total.</param>
    /// <exception cref="ModelFormatException">Either input is not a usable llama2.c file (names it and the problem).</exception>
    public static void Convert(string checkpointPath, string tokenizerPath, string outputPath, string modelName, IProgress<(int Done, int Total)>? progress = null)
    {
        var checkpoint = Llama2cCheckpoint.Read(checkpointPath);
        var vocabulary = Llama2cVocabulary.Read(tokenizerPath, checkpoint.Vocabulary);
        var temporary = outputPath + ".tmp";
        try
        {
            using (var source = new FileStream(checkpointPath, FileMode.Open, FileAccess.Read, FileShare.Read, CopyBufferBytes))
            using (var output = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, CopyBufferBytes))
            {
                var total = TensorCount(checkpoint);
                var done = 0;
                CreateWriter(checkpoint, vocabulary, modelName, source, () => progress?.Report((++done, total))).WriteTo(output);
                output.Flush(flushToDisk: true);
            }

            File.Move(temporary, outputPath, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private static int TensorCount(Llama2cCheckpoint c) => 2 + 9 * c.Layers + (c.SharedClassifier ? 0 : 1);

    private static GgufFileWriter CreateWriter(Llama2cCheckpoint c, Llama2cVocabulary vocabulary, string modelName, FileStream source, Action tensorWritten)
    {
        var writer = new GgufFileWriter()
            .Add("general.architecture", "llama")
            .Add("general.name", modelName)
            .Add("general.file_type", 0u) // LLAMA_FTYPE_ALL_F32
            .Add("llama.context_length", (uint)c.SequenceLength)
            .Add("llama.embedding_length", (uint)c.Dim)
            .Add("llama.block_count", (uint)c.Layers)
            .Add("llama.feed_forward_length", (uint)c.HiddenDim)
            .Add("llama.rope.dimension_count", (uint)c.HeadSize)
            .Add("llama.attention.head_count", (uint)c.Heads)
            .Add("llama.attention.head_count_kv", (uint)c.KvHeads)
            .Add("llama.attention.layer_norm_rms_epsilon", RmsNormEpsilon)
            .Add("llama.rope.freq_base", RopeTheta)
            .Add("tokenizer.ggml.model", "llama")
            .Add("tokenizer.ggml.tokens", vocabulary.Tokens)
            .Add("tokenizer.ggml.scores", vocabulary.Scores)
            .Add("tokenizer.ggml.token_type", vocabulary.Types)
            .Add("tokenizer.ggml.bos_token_id", (uint)vocabulary.BosId)
            .Add("tokenizer.ggml.eos_token_id", (uint)vocabulary.EosId)
            .Add("tokenizer.ggml.unknown_token_id", (uint)vocabulary.UnknownId)
            .Add("tokenizer.ggml.add_bos_token", true)
            .Add("tokenizer.ggml.add_eos_token", false);

        long dim = c.Dim, hidden = c.HiddenDim, kvDim = c.KvDim, vocab = c.Vocabulary;
        var at = c.Offsets();
        // A matrix of `rows` outputs over `columns` inputs is stored row-major in both formats: ggml shape [columns, rows].
        void Tensor(string name, long offset, params long[] shape) =>
            writer.AddTensor(name, GgmlType.F32, shape, output =>
            {
                Copy(source, Llama2cCheckpoint.HeaderBytes + 4 * offset, shape.Aggregate(4L, (a, b) => a * b), output);
                tensorWritten();
            });

        Tensor("token_embd.weight", at.Embedding, dim, vocab);
        for (var l = 0L; l < c.Layers; l++)
        {
            var p = $"blk.{l}.";
            Tensor(p + "attn_norm.weight", at.AttentionNorm + l * dim, dim);
            Tensor(p + "attn_q.weight", at.Wq + l * dim * dim, dim, dim);
            Tensor(p + "attn_k.weight", at.Wk + l * dim * kvDim, dim, kvDim);
            Tensor(p + "attn_v.weight", at.Wv + l * dim * kvDim, dim, kvDim);
            Tensor(p + "attn_output.weight", at.Wo + l * dim * dim, dim, dim);
            Tensor(p + "ffn_norm.weight", at.FfnNorm + l * dim, dim);
            Tensor(p + "ffn_gate.weight", at.W1 + l * dim * hidden, dim, hidden);
            Tensor(p + "ffn_down.weight", at.W2 + l * hidden * dim, hidden, dim);
            Tensor(p + "ffn_up.weight", at.W3 + l * dim * hidden, dim, hidden);
        }

        Tensor("output_norm.weight", at.FinalNorm, dim);
        if (!c.SharedClassifier)
        {
            Tensor("output.weight", at.End, dim, vocab);
        }

        return writer;
    }

    private static void Copy(FileStream source, long offset, long count, Stream output)
    {
        source.Position = offset;
        var buffer = new byte[Math.Min(count, CopyBufferBytes)];
        while (count > 0)
        {
            var read = source.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (read == 0)
            {
                throw new EndOfStreamException($"{source.Name} ended while copying a tensor (it changed during the conversion?)");
            }

            output.Write(buffer, 0, read);
            count -= read;
        }
    }
}
