namespace AspireAi.Inference.Backends.Cpu;

internal static class HostMemory
{
    /// <summary>On Linux <c>MemAvailable</c> from /proc/meminfo (free RAM plus reclaimable cache); elsewhere what the GC sees.</summary>
    public static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
                    return kb * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        var info = GC.GetGCMemoryInfo();
        return info.TotalAvailableMemoryBytes - info.MemoryLoadBytes;
    }
}
