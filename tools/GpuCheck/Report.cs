using System.Globalization;

namespace AspireAi.GpuCheck;

/// <summary>Collects pass/fail lines and timings; prints as it goes and writes everything to the output folder at the end.</summary>
internal sealed class Report
{
    private readonly List<string> _lines = [];
    private readonly List<string> _timings = [];

    public int Passed { get; private set; }

    public int Failed { get; private set; }

    public void Line(string text)
    {
        Console.WriteLine(text);
        _lines.Add(text);
    }

    /// <summary>Records a comparison: relative L2 error against the bound, and every output element written (no NaN).</summary>
    public bool Check(string what, double error, double bound, string? extra = null)
    {
        var ok = double.IsFinite(error) && error <= bound;
        if (ok)
        {
            Passed++;
        }
        else
        {
            Failed++;
        }

        Line(string.Create(CultureInfo.InvariantCulture, $"{(ok ? "PASS" : "FAIL")} {what,-72} rel.err {error:E2} (bound {bound:E0}){(extra is null ? "" : "  " + extra)}"));
        return ok;
    }

    public void Fail(string what, string why)
    {
        Failed++;
        Line($"FAIL {what}: {why}");
    }

    /// <summary>How many of the values differ in any bit (a NaN equals only the same NaN).</summary>
    public static long CountDifferentBits(float[] a, float[] b) =>
        a.Zip(b).LongCount(p => BitConverter.SingleToUInt32Bits(p.First) != BitConverter.SingleToUInt32Bits(p.Second));

    /// <summary>A bit-for-bit comparison: passes where none of the <paramref name="total"/> items differ, else fails saying how many did.</summary>
    public void BitForBit(string what, long differing, long total, string items = "values")
    {
        if (differing == 0)
        {
            Pass(what);
        }
        else
        {
            Fail(what, $"{differing} of {total} {items} differ");
        }
    }

    public void Pass(string what)
    {
        Passed++;
        Line($"PASS {what}");
    }

    public void Timing(string text)
    {
        Line("TIME " + text);
        _timings.Add(text);
    }

    public void Write(string? directory)
    {
        var summary = $"{Passed} passed, {Failed} failed";
        Console.WriteLine();
        foreach (var t in _timings)
        {
            Console.WriteLine("TIME " + t);
        }

        Console.WriteLine(summary);
        if (directory is null)
        {
            return;
        }

        Directory.CreateDirectory(directory);
        File.WriteAllLines(Path.Combine(directory, "gpucheck.log"), [.. _lines, summary]);
        File.WriteAllLines(Path.Combine(directory, "timings.txt"), _timings);
    }

    /// <summary>‖a − b‖ / ‖b‖ over the first <paramref name="count"/> values; NaN or ∞ anywhere in <paramref name="a"/> gives ∞.</summary>
    public static double RelativeError(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int count = -1)
    {
        if (count < 0)
        {
            count = b.Length;
        }

        double difference = 0, reference = 0;
        for (var i = 0; i < count; i++)
        {
            if (!float.IsFinite(a[i]))
            {
                return double.PositiveInfinity;
            }

            var d = (double)a[i] - b[i];
            difference += d * d;
            reference += (double)b[i] * b[i];
        }

        return reference == 0 ? (difference == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(difference / reference);
    }
}
