namespace AspireAi.Inference.Models.SafeTensors;

/// <summary>
/// Hugging Face's llama rotates the two halves of each head (dimension i with i + d/2); GGUF's <c>llama</c> layout rotates
/// adjacent pairs (2i with 2i + 1). llama.cpp's converter (<c>LlamaModel.permute</c> in <c>convert_hf_to_gguf.py</c>:
/// <c>reshape(n_head, 2, d/2, …).swapaxes(1, 2)</c>) reorders the rows of q_proj and k_proj (and their biases) so that
/// the same rotation comes out; this is that reordering, per output row.
/// </summary>
internal static class RopePermutation
{
    /// <summary>The source row that lands in row <paramref name="row"/> of the permuted tensor.</summary>
    /// <param name="headDim">Rows per head (the head dimension).</param>
    public static int SourceRow(int row, int headDim)
    {
        var head = row / headDim;
        var within = row % headDim;
        // Destination (head, i, j) at head*d + 2i + j comes from source (head, j, i) at head*d + j*d/2 + i.
        var i = within / 2;
        var j = within % 2;
        return head * headDim + j * (headDim / 2) + i;
    }
}
