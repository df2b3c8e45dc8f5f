namespace AspireAi.Inference.Serving.OpenAi;

/// <summary>vLLM's <c>prompt_logprobs</c> extension, in its response shape (text completions per choice, chat at the top level).</summary>
internal static class PromptLogprobsJson
{
    /// <summary>
    /// vLLM's <c>prompt_logprobs</c>: null for the first prompt token, then per token a map from token id to its logprob, rank
    /// and text — the prompt token itself and the <paramref name="k"/> most likely tokens at that position.
    /// </summary>
    public static List<Dictionary<string, object>?> Vllm(ServedModel model, int[] prompt, IReadOnlyList<Engine.PromptTokenLogprob>? promptLogprobs, int k)
    {
        var scored = promptLogprobs ?? [];
        var result = new List<Dictionary<string, object>?>(prompt.Length) { null };
        for (var t = 1; t < prompt.Length && t - 1 < scored.Count; t++)
        {
            var entry = scored[t - 1];
            var map = new Dictionary<string, object>
            {
                [entry.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)] =
                    new { logprob = entry.Logprob, rank = entry.Rank, decoded_token = model.TokenBytes.Text(entry.Id) },
            };
            var rank = 1;
            foreach (var a in (entry.TopLogprobs ?? []).Take(k))
            {
                map.TryAdd(a.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    new { logprob = a.Logprob, rank, decoded_token = model.TokenBytes.Text(a.Id) });
                rank++;
            }

            result.Add(map);
        }

        return result;
    }
}
