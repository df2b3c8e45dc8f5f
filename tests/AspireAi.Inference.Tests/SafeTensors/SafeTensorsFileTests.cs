using System.Buffers.Binary;
using System.Text;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.SafeTensors;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.SafeTensors;

/// <summary>One safetensors file: written by the test writer, read back, and each kind of bad header refused by name.</summary>
public sealed class SafeTensorsFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Round_trips_every_supported_dtype_with_metadata()
    {
        var random = new Random(5);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var f32 = Values(12);
        var f16 = FloatCodec.RoundTo("F16", Values(6));
        var bf16 = FloatCodec.RoundTo("BF16", Values(10));
        var writer = new SafeTensorsWriter()
            .Add("a.f32", "F32", f32, 3, 4)
            .Add("b.f16", "F16", f16, 6)
            .Add("c.bf16", "BF16", bf16, 2, 5)
            .Add("d.empty", "F32", [], 0, 4);
        writer.Metadata["note"] = "ü ▁ 🙂";
        var path = writer.WriteTo(_temp.File("model.safetensors"));

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["a.f32", "b.f16", "c.bf16", "d.empty"], file.Tensors.Select(t => t.Name));
        Assert.Equal("ü ▁ 🙂", file.Metadata["note"]);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(0, (file.DataOffset - 8) % 8);

        Check("a.f32", SafeTensorsDType.F32, [3, 4], f32);
        Check("b.f16", SafeTensorsDType.F16, [6], f16);
        Check("c.bf16", SafeTensorsDType.BF16, [2, 5], bf16);
        Check("d.empty", SafeTensorsDType.F32, [0, 4], []);
        Assert.Null(file.FindTensor("nope"));

        void Check(string name, SafeTensorsDType dtype, long[] shape, float[] expected)
        {
            var info = file.FindTensor(name)!;
            Assert.Equal(dtype, info.DType);
            Assert.Equal(shape, info.Shape);
            var bytes = new byte[info.ByteLength];
            System.Runtime.InteropServices.Marshal.Copy(file.Address(info), bytes, 0, bytes.Length);
            Assert.Equal(expected, FloatCodec.Decode(dtype.ToString(), bytes));
        }
    }

    public static TheoryData<string, string, string> BadHeaders => new()
    {
        // header JSON, the item the error names (or "" for the file), words the problem must contain
        { """{"t":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}""", "tensor 't'", "dtype I64, which this engine does not read; supported: BF16, F16, F32" },
        { """{"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}""", "tensor 't'", "'F33', which is not a safetensors dtype" },
        { """{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "tensor 't'", "span 8 bytes, but F32 [3] takes 12" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "tensor 't'", "run past the end of the data section (8 bytes" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", "tensor 't'", "end before they begin" },
        { """{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "tensor 't'", "shape dimension 0 (-2) is not a non-negative integer" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", "tensor 't'", "no 'data_offsets' pair" },
        { """{"t":{"dtype":"F32","data_offsets":[0,8]}}""", "tensor 't'", "no 'shape' array" },
        { """{"t":{"shape":[2],"data_offsets":[0,8]}}""", "tensor 't'", "no string 'dtype'" },
        { """{"t":[1,2]}""", "tensor 't'", "must be an object" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "tensor 'u'", "overlaps tensor 't'" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "tensor 't'", "appears twice" },
        { """{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", "tensor 't'", "more elements than fit in 64 bits" },
        { """{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "tensor 't'", "leaving a hole of 4 bytes" },
        { """{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "", "the tensors cover 4 bytes of the 8-byte data section" },
        { """{"t\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "", "not valid Unicode" },
        { """{"__metadata__":{"a":1}}""", "", "'__metadata__.a' must be a string" },
        { """[1,2]""", "", "not a JSON object" },
        { """{"t":""", "", "not valid JSON" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x""", "", "bytes other than space padding" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void Bad_headers_are_refused_with_the_tensor_and_the_problem(string header, string item, string problem)
    {
        var path = _temp.File("bad.safetensors");
        File.WriteAllBytes(path, new SafeTensorsWriter().Add("t", "F32", new float[2], 2).ToArray(header));

        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Equal(path, e.FilePath);
        Assert.Equal(item == "" ? null : item, e.Item);
        Assert.Contains(problem, e.Problem);
    }

    [Theory]
    [InlineData(0, "truncated: 0 bytes")]
    [InlineData(5, "truncated: 5 bytes")]
    [InlineData(12, "the header claims")]
    public void Truncated_files_are_refused(int length, string problem)
    {
        var path = _temp.File("short.safetensors");
        File.WriteAllBytes(path, new SafeTensorsWriter().Add("t", "F32", new float[2], 2).ToArray()[..length]);
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void A_header_length_past_the_format_limit_is_refused_before_reading()
    {
        var path = _temp.File("huge.safetensors");
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 200_000_000);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("exceeds the format's limit of 100000000 bytes", e.Message);
    }

    [Fact]
    public void Invalid_utf8_in_the_header_is_refused()
    {
        var path = _temp.File("utf8.safetensors");
        var header = Encoding.UTF8.GetBytes("""{"tX":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""");
        header[3] = 0xFF;
        var bytes = new byte[8 + header.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("not valid UTF-8", e.Message);
    }
}
