using AspireAi.Inference.Models;

namespace AspireAi.Inference.Tests.Support;

/// <summary>
/// A plain float64 forward pass of llama / qwen2 / qwen3, written straight from the architectures' definitions with no
/// code shared with the engine: weights dequantized by <see cref="GgmlReference"/>, one token at a time, full causal
/// attention over everything before it. The yardstick the engine's logits are measured against.
/// </summary>
public sealed class ReferenceTransformer
{
    private readonly ModelConfig _c;
    private readonly Func<string, double[]?> _tensor;
    private readonly List<double[]>[] _keys;
    private readonly List<double[]>[] _values;

    public ReferenceTransformer(IModelSource source)
    {
        _c = source.Config;
        var cache = new Dictionary<string, double[]?>();
        _tensor = name =>
        {
            if (!cache.TryGetValue(name, out var values))
            {
                values = source.TryGetTensor(name, out var view)
                    ? GgmlReference.Dequantize(view.Type, view.Bytes.ToArray(), view.Shape.Length > 1 ? (int)view.Shape[1] : 1, (int)view.Shape[0])
                    : null;
                cache[name] = values;
            }

            return values;
        };
        _keys = Enumerable.Range(0, _c.LayerCount).Select(_ => new List<double[]>()).ToArray();
        _values = Enumerable.Range(0, _c.LayerCount).Select(_ => new List<double[]>()).ToArray();
    }

    /// <summary>Feeds the next token of the sequence; returns the logits predicting the one after it.</summary>
    public double[] Next(int token)
    {
        var c = _c;
        var position = _keys[0].Count;
        var dim = c.EmbeddingLength;
        var x = _tensor("token_embd.weight")!.AsSpan(token * dim, dim).ToArray();
        for (var l = 0; l < c.LayerCount; l++)
        {
            var p = $"blk.{l}.";
            var h = RmsNorm(x, _tensor(p + "attn_norm.weight")!);
            var q = MatVec(p + "attn_q.weight", h);
            var k = MatVec(p + "attn_k.weight", h);
            var v = MatVec(p + "attn_v.weight", h);
            if (c.HasQkvBias)
            {
                Add(q, _tensor(p + "attn_q.bias")!);
                Add(k, _tensor(p + "attn_k.bias")!);
                Add(v, _tensor(p + "attn_v.bias")!);
            }

            for (var head = 0; head < c.HeadCount; head++)
            {
                var qh = q.AsSpan(head * c.HeadDim, c.HeadDim);
                if (c.HasQkNorm)
                {
                    RmsNorm(qh.ToArray(), _tensor(p + "attn_q_norm.weight")!).CopyTo(qh);
                }

                Rope(qh, position);
            }

            for (var head = 0; head < c.KvHeadCount; head++)
            {
                var kh = k.AsSpan(head * c.HeadDim, c.HeadDim);
                if (c.HasQkNorm)
                {
                    RmsNorm(kh.ToArray(), _tensor(p + "attn_k_norm.weight")!).CopyTo(kh);
                }

                Rope(kh, position);
            }

            _keys[l].Add(k);
            _values[l].Add(v);
            var attention = new double[c.HeadCount * c.HeadDim];
            for (var head = 0; head < c.HeadCount; head++)
            {
                var kvHead = head / (c.HeadCount / c.KvHeadCount);
                var scores = new double[position + 1];
                for (var j = 0; j <= position; j++)
                {
                    double s = 0;
                    for (var i = 0; i < c.HeadDim; i++)
                    {
                        s += q[head * c.HeadDim + i] * _keys[l][j][kvHead * c.HeadDim + i];
                    }

                    scores[j] = s / Math.Sqrt(c.HeadDim);
                }

                var max = scores.Max();
                var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                var total = weights.Sum();
                for (var j = 0; j <= position; j++)
                {
                    for (var i = 0; i < c.HeadDim; i++)
                    {
                        attention[head * c.HeadDim + i] += weights[j] / total * _values[l][j][kvHead * c.HeadDim + i];
                    }
                }
            }

            Add(x, MatVec(p + "attn_output.weight", attention));
            var f = RmsNorm(x, _tensor(p + "ffn_norm.weight")!);
            var gate = MatVec(p + "ffn_gate.weight", f);
            var up = MatVec(p + "ffn_up.weight", f);
            var act = gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray();
            Add(x, MatVec(p + "ffn_down.weight", act));
        }

        var final = RmsNorm(x, _tensor("output_norm.weight")!);
        return MatVec(_tensor("output.weight") is null ? "token_embd.weight" : "output.weight", final);
    }

    private double[] MatVec(string name, double[] x)
    {
        var w = _tensor(name)!;
        var rows = w.Length / x.Length;
        var y = new double[rows];
        for (var r = 0; r < rows; r++)
        {
            double s = 0;
            for (var i = 0; i < x.Length; i++)
            {
                s += w[r * x.Length + i] * x[i];
            }

            y[r] = s;
        }

        return y;
    }

    private double[] RmsNorm(double[] x, double[] weight)
    {
        var mean = x.Sum(v => v * v) / x.Length;
        var scale = 1 / Math.Sqrt(mean + _c.RmsNormEpsilon);
        return x.Select((v, i) => v * scale * weight[i]).ToArray();
    }

    private void Rope(Span<double> head, int position)
    {
        var d = head.Length;
        for (var i = 0; i < d / 2; i++)
        {
            var freq = Math.Pow(_c.RopeTheta, -2.0 * i / d) / (_c.RopeFrequencyFactors?[i] ?? 1);
            var (sin, cos) = Math.SinCos(position * freq);
            var (a, b) = _c.RopeStyle == RopeStyle.AdjacentPairs ? (2 * i, 2 * i + 1) : (i, i + d / 2);
            var x0 = head[a];
            var x1 = head[b];
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }

    private static void Add(double[] x, double[] y)
    {
        for (var i = 0; i < x.Length; i++)
        {
            x[i] += y[i];
        }
    }
}
