using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Gguf;

/// <summary>
/// Hundreds of damaged variants of one small valid model file: each must either load consistently or fail with a
/// <see cref="ModelFormatException"/> naming the file; never another exception, an out-of-range read or a hang.
/// </summary>
public sealed class GgufFuzzTests : IDisposable
{
    // Far above the ~1 ms a case takes; only a hang (or a pathological loop) comes near it.
    private static readonly TimeSpan CaseTimeLimit = TimeSpan.FromSeconds(10);

    private readonly TempDirectory _temp = new();
    private readonly byte[] _valid;
    private readonly long _dataOffset;

    public GgufFuzzTests()
    {
        var w = new TinyGgufModel { Embedding = 32, Heads = 2, KvHeads = 1, FeedForward = 32, Vocabulary = 24, Layers = 1 }.CreateWriter()
            .AddTensor("extra.q8", GgmlType.Q8_0, [64, 2], new byte[34 * 4])
            .Add("general.description", "fuzz ▁ü🙂");
        _valid = w.ToArray();
        var path = _temp.File("valid.gguf");
        File.WriteAllBytes(path, _valid);
        using var file = GgufFile.Open(path);
        _dataOffset = file.DataOffset;
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Truncated_at_any_offset()
    {
        var outcomes = new Outcomes();
        // Every offset through the header, then a stride through the data section.
        var cuts = Enumerable.Range(0, (int)_dataOffset + 1).Concat(Enumerable.Range(0, 64).Select(i => (int)(_dataOffset + (_valid.Length - _dataOffset) * i / 64)));
        foreach (var cut in cuts.Distinct())
        {
            outcomes.Add(Run(_valid[..cut], $"cut{cut}"));
        }

        // A strict prefix of a model can never be a whole model.
        Assert.Equal(0, outcomes.Loaded);
        Assert.True(outcomes.Total > 300, $"only {outcomes.Total} cases");
    }

    [Fact]
    public void Random_byte_flips_in_the_header()
    {
        var random = new Random(42);
        var outcomes = new Outcomes();
        for (var i = 0; i < 400; i++)
        {
            var bytes = (byte[])_valid.Clone();
            var flips = 1 + random.Next(4);
            for (var f = 0; f < flips; f++)
            {
                bytes[random.Next((int)_dataOffset)] ^= (byte)(1 << random.Next(8));
            }

            outcomes.Add(Run(bytes, $"flip{i}"));
        }

        Assert.True(outcomes.Failed > 0);
    }

    [Fact]
    public void Absurd_values_written_over_header_fields()
    {
        ulong[] absurd = [ulong.MaxValue, long.MaxValue, 1UL << 31, 1UL << 32, uint.MaxValue, 0, 1UL << 62, (ulong)_valid.Length, 3];
        var random = new Random(7);
        var outcomes = new Outcomes();
        for (var i = 0; i < 300; i++)
        {
            var bytes = (byte[])_valid.Clone();
            var at = random.Next((int)_dataOffset - 8);
            var width = random.Next(2) == 0 ? 4 : 8;
            BitConverter.GetBytes(absurd[random.Next(absurd.Length)]).AsSpan(0, width).CopyTo(bytes.AsSpan(at));
            outcomes.Add(Run(bytes, $"absurd{i}"));
        }

        Assert.True(outcomes.Failed > 0);
    }

    private bool Run(byte[] bytes, string name)
    {
        var path = _temp.File(name + ".gguf");
        File.WriteAllBytes(path, bytes);
        var task = Task.Run(() =>
        {
            try
            {
                using var file = GgufFile.Open(path);
                // Loaded: every tensor must lie inside the file and be readable, and the config must agree with it.
                long sum = 0;
                foreach (var info in file.Tensors)
                {
                    Assert.True(file.TryGetTensor(info.Name, out var view));
                    Assert.InRange(info.FileOffset + info.ByteLength, 0, bytes.Length);
                    foreach (var b in view.Bytes)
                    {
                        sum += b;
                    }
                }

                Assert.True(file.Config.VocabularySize > 0 && sum >= 0);
                return true;
            }
            catch (ModelFormatException e)
            {
                Assert.Equal(path, e.FilePath);
                Assert.StartsWith(path + ": ", e.Message);
                return false;
            }
        });
        Assert.True(task.Wait(CaseTimeLimit), $"{name}: no answer within {CaseTimeLimit}");
        File.Delete(path);
        return task.Result;
    }

    private sealed class Outcomes
    {
        public int Loaded { get; private set; }
        public int Failed { get; private set; }
        public int Total => Loaded + Failed;

        public void Add(bool loaded)
        {
            if (loaded)
            {
                Loaded++;
            }
            else
            {
                Failed++;
            }
        }
    }
}
