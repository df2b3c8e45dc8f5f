using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace AspireAi.ServiceDefaults;

/// <summary>
/// OpenAI's list paging for files and batches (<c>limit</c>, <c>after</c>, and for files <c>order</c>), read the same way by
/// Inference (one replica's list) and the gateway (the lists of every replica merged). Objects are ordered by their
/// <see cref="BatchIds.SortKey"/>: newest first unless <c>order=asc</c>; <c>after</c> is the last id of the previous page,
/// and its key alone says where the next page starts, whichever replica made it.
/// </summary>
public sealed record BatchListQuery(int Limit, string? AfterKey, bool Ascending)
{
    /// <summary>OpenAI's page of batches: 20 unless asked, at most 100.</summary>
    public const int DefaultBatchLimit = 20;
    public const int MaxBatchLimit = 100;

    /// <summary>OpenAI's page of files: 10,000 unless asked, at most 10,000.</summary>
    public const int MaxFileLimit = 10_000;

    /// <summary>Reads the query; on a bad value returns null and the 400 naming it in <paramref name="error"/>.</summary>
    public static BatchListQuery? Read(IQueryCollection query, int defaultLimit, int maxLimit, bool allowOrder, out IResult? error)
    {
        error = null;
        var limit = defaultLimit;
        if (query.TryGetValue("limit", out var limitText)
            && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1 || limit > maxLimit))
        {
            error = OpenAiError.Result(400, $"Invalid 'limit': '{limitText}' must be an integer from 1 to {maxLimit}.", "limit", "invalid_value");
            return null;
        }

        string? afterKey = null;
        if (query.TryGetValue("after", out var after) && !string.IsNullOrEmpty(after))
        {
            if (!BatchIds.TryParse(after, out var key, out _))
            {
                error = OpenAiError.Result(400, $"Invalid 'after': '{after}' is not a file or batch id returned by this API.", "after", "invalid_value");
                return null;
            }

            afterKey = key;
        }

        var ascending = false;
        if (query.TryGetValue("order", out var order))
        {
            if (!allowOrder || order.ToString() is not ("asc" or "desc"))
            {
                error = OpenAiError.Result(400, allowOrder ? $"Invalid 'order': '{order}' must be 'asc' or 'desc'." : "Unknown parameter 'order'.",
                    "order", "invalid_value");
                return null;
            }

            ascending = order == "asc";
        }

        return new BatchListQuery(limit, afterKey, ascending);
    }

    /// <summary>This page of <paramref name="items"/> (in any order), and whether more follow it.</summary>
    public List<T> Page<T>(IEnumerable<T> items, Func<T, string> sortKey, out bool hasMore)
    {
        var ordered = Ascending
            ? items.Where(i => AfterKey is null || string.CompareOrdinal(sortKey(i), AfterKey) > 0).OrderBy(sortKey, StringComparer.Ordinal)
            : items.Where(i => AfterKey is null || string.CompareOrdinal(sortKey(i), AfterKey) < 0).OrderByDescending(sortKey, StringComparer.Ordinal);
        var page = ordered.Take(Limit + 1).ToList();
        hasMore = page.Count > Limit;
        if (hasMore)
        {
            page.RemoveAt(Limit);
        }

        return page;
    }
}
