using System.Buffers.Binary;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.SafeTensors;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.SafeTensors;

/// <summary>
/// Hundreds of damaged variants of one small valid Hugging Face folder: each must either load consistently (every tensor
/// readable) or fail with a <see cref="ModelFormatException"/> naming the damaged file; never another exception or a hang.
/// </summary>
public sealed class SafeTensorsFuzzTests : IDisposable
{
    private static readonly TimeSpan CaseTimeLimit = TimeSpan.FromSeconds(10);

    private readonly TempDirectory _temp = new();
    private readonly TinyHfModel _tiny = new() { DType = "F16", Embedding = 32, Heads = 2, KvHeads = 1, FeedForward = 32, Vocabulary = 24, Layers = 1, Tied = false };
    private readonly string _folder;
    private readonly string _weights;
    private readonly byte[] _valid;
    private readonly int _dataOffset;

    public SafeTensorsFuzzTests()
    {
        _folder = _tiny.WriteFolder(_temp.File("model"));
        _weights = Path.Combine(_folder, "model.safetensors");
        _valid = File.ReadAllBytes(_weights);
        _dataOffset = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(_valid);
        // The valid folder loads, with a quantized and a permuted tensor among those it converts.
        Assert.True(Run(_valid, quantize: GgmlType.Q4_0));
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Truncated_at_any_offset()
    {
        var outcomes = new Outcomes();
        var cuts = Enumerable.Range(0, _dataOffset + 1).Concat(Enumerable.Range(0, 64).Select(i => _dataOffset + (_valid.Length - _dataOffset) * i / 64));
        foreach (var cut in cuts.Distinct())
        {
            outcomes.Add(Run(_valid[..cut]));
        }

        Assert.Equal(0, outcomes.Loaded);
        Assert.True(outcomes.Total > 300, $"only {outcomes.Total} cases");
    }

    [Fact]
    public void Random_byte_flips_in_the_header()
    {
        var random = new Random(11);
        var outcomes = new Outcomes();
        for (var i = 0; i < 400; i++)
        {
            var bytes = (byte[])_valid.Clone();
            for (var f = 1 + random.Next(3); f > 0; f--)
            {
                bytes[random.Next(_dataOffset)] ^= (byte)(1 << random.Next(8));
            }

            outcomes.Add(Run(bytes, i % 3 == 0 ? GgmlType.Q8_0 : null));
        }

        Assert.True(outcomes.Failed > 300, $"{outcomes.Failed} of {outcomes.Total} failed");
    }

    [Fact]
    public void Json_tokens_written_over_the_header()
    {
        // Characters that keep the JSON plausible: digits change offsets and shapes, quotes and brackets change structure.
        string[] replacements = ["0", "7", "9", "-", "\"", "{", "}", "[", "]", ",", ":", "1e309", "99999999999999999999", "null", "F64", " "];
        var random = new Random(12);
        var outcomes = new Outcomes();
        for (var i = 0; i < 300; i++)
        {
            var bytes = (byte[])_valid.Clone();
            var text = System.Text.Encoding.ASCII.GetBytes(replacements[random.Next(replacements.Length)]);
            var at = 8 + random.Next(_dataOffset - 8 - text.Length);
            text.CopyTo(bytes, at);
            outcomes.Add(Run(bytes));
        }

        Assert.True(outcomes.Failed > 200, $"{outcomes.Failed} of {outcomes.Total} failed");
    }

    [Fact]
    public void Absurd_header_lengths()
    {
        ulong[] absurd = [0, 1, 2, 7, (ulong)_dataOffset - 9, (ulong)_dataOffset - 7, (ulong)_valid.Length, 100_000_001, uint.MaxValue, long.MaxValue, ulong.MaxValue, 1UL << 63];
        var outcomes = new Outcomes();
        foreach (var value in absurd)
        {
            var bytes = (byte[])_valid.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            outcomes.Add(Run(bytes));
        }

        Assert.Equal(0, outcomes.Loaded);
    }

    [Fact]
    public void Damaged_shard_index()
    {
        var sharded = _tiny.WriteFolder(_temp.File("sharded"), shards: 2);
        var indexPath = Path.Combine(sharded, SafeTensorsShards.IndexFileName);
        var index = File.ReadAllBytes(indexPath);
        var shards = Directory.GetFiles(sharded, "*.safetensors").Append(indexPath).ToHashSet();
        var random = new Random(13);
        var outcomes = new Outcomes();
        for (var i = 0; i < 200; i++)
        {
            var bytes = (byte[])index.Clone();
            bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(indexPath, bytes);
            outcomes.Add(Attempt(sharded, null, path => Assert.Contains(path, shards)));
        }

        File.WriteAllBytes(indexPath, index);
        Assert.True(outcomes.Failed > 150, $"{outcomes.Failed} of {outcomes.Total} failed");
    }

    private bool Run(byte[] bytes, GgmlType? quantize = null)
    {
        File.WriteAllBytes(_weights, bytes);
        return Attempt(_folder, quantize, path => Assert.Equal(_weights, path));
    }

    private static bool Attempt(string folder, GgmlType? quantize, Action<string> checkErrorPath)
    {
        var task = Task.Run(() =>
        {
            try
            {
                using var model = SafeTensorsModel.Open(folder, quantize);
                long sum = 0;
                foreach (var name in model.TensorNames)
                {
                    Assert.True(model.TryGetTensor(name, out var view));
                    Assert.Equal(GgmlTypeInfo.RowBytes(view.Type, view.Shape[0]) * (view.ElementCount / view.Shape[0]), view.ByteLength);
                    foreach (var b in view.Bytes)
                    {
                        sum += b;
                    }
                }

                Assert.True(model.Config.VocabularySize > 0 && sum >= 0);
                return true;
            }
            catch (ModelFormatException e)
            {
                checkErrorPath(e.FilePath);
                Assert.StartsWith(e.FilePath + ": ", e.Message);
                return false;
            }
        });
        Assert.True(task.Wait(CaseTimeLimit), $"no answer within {CaseTimeLimit}");
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
