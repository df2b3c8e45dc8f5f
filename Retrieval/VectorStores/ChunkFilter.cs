using System.Linq.Expressions;
using System.Reflection;
using System.Text.Json;

namespace AspireAi.Retrieval.VectorStores;

/// <summary>A filter every store understands: all of the clauses hold; a clause holds when its field equals one of its values.</summary>
public sealed record ChunkFilter(IReadOnlyList<FilterClause> Clauses)
{
    public static readonly ChunkFilter None = new([]);

    private static readonly PropertyInfo MetadataProperty = typeof(ChunkRecord).GetProperty(nameof(ChunkRecord.Metadata))!;
    private static readonly PropertyInfo DocumentIdProperty = typeof(ChunkRecord).GetProperty(nameof(ChunkRecord.DocumentId))!;
    private static readonly MethodInfo Indexer = typeof(IReadOnlyDictionary<string, string>).GetMethod("get_Item")!;
    private static readonly MethodInfo ContainsKey = typeof(IReadOnlyDictionary<string, string>).GetMethod("ContainsKey")!;
    private static readonly MethodInfo ListContains = typeof(Enumerable).GetMethods()
        .Single(m => m.Name == nameof(Enumerable.Contains) && m.GetParameters().Length == 2).MakeGenericMethod(typeof(string));

    public bool IsEmpty => Clauses.Count == 0;

    /// <summary>
    /// Parses the search API's <c>filter</c>: <c>{"field": value, "other": [v1, v2]}</c>, every field must match, an array
    /// matches any of its values; <c>document_id</c> is the document's id, any other field a metadata key.
    /// </summary>
    public static ChunkFilter Parse(JsonElement filter, out string? error)
    {
        error = null;
        if (filter.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return None;
        }

        if (filter.ValueKind != JsonValueKind.Object)
        {
            error = "'filter' must be an object of field → value (or array of values).";
            return None;
        }

        var clauses = new List<FilterClause>();
        foreach (var property in filter.EnumerateObject())
        {
            var values = new List<string>();
            if (property.Value.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in property.Value.EnumerateArray())
                {
                    if (!IsScalar(item))
                    {
                        error = $"'filter.{property.Name}' may only hold strings, numbers or booleans.";
                        return None;
                    }

                    values.Add(ChunkRecord.FilterValue(item));
                }
            }
            else if (IsScalar(property.Value))
            {
                values.Add(ChunkRecord.FilterValue(property.Value));
            }
            else
            {
                error = $"'filter.{property.Name}' must be a string, number, boolean or an array of them.";
                return None;
            }

            clauses.Add(new FilterClause(property.Name, values));
        }

        return new ChunkFilter(clauses);
    }

    private static bool IsScalar(JsonElement value) =>
        value.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False;

    /// <summary>The filter as the LINQ expression <c>Microsoft.Extensions.VectorData</c> search options carry.</summary>
    public Expression<Func<ChunkRecord, bool>>? ToExpression()
    {
        if (IsEmpty)
        {
            return null;
        }

        var record = Expression.Parameter(typeof(ChunkRecord), "r");
        Expression? body = null;
        foreach (var clause in Clauses)
        {
            Expression field;
            Expression? guard = null;
            if (clause.Field == FilterClause.DocumentIdField)
            {
                field = Expression.Property(record, DocumentIdProperty);
            }
            else
            {
                var metadata = Expression.Property(record, MetadataProperty);
                var key = Expression.Constant(clause.Field);
                guard = Expression.Call(metadata, ContainsKey, key);
                field = Expression.Call(metadata, Indexer, key);
            }

            Expression test = clause.Values.Count == 1
                ? Expression.Equal(field, Expression.Constant(clause.Values[0]))
                : Expression.Call(ListContains, Expression.Constant(clause.Values.ToArray(), typeof(IEnumerable<string>)), field);
            if (guard is not null)
            {
                test = Expression.AndAlso(guard, test);
            }

            body = body is null ? test : Expression.AndAlso(body, test);
        }

        return Expression.Lambda<Func<ChunkRecord, bool>>(body!, record);
    }

    /// <summary>
    /// Reads back a filter expression of the shapes <see cref="ToExpression"/> builds (the store side of the abstraction):
    /// conjunctions of <c>r.DocumentId == v</c>, <c>r.Metadata["k"] == v</c> and <c>values.Contains(…)</c>.
    /// </summary>
    public static ChunkFilter FromExpression(Expression<Func<ChunkRecord, bool>>? expression)
    {
        if (expression is null)
        {
            return None;
        }

        var clauses = new List<FilterClause>();
        Collect(expression.Body, clauses);
        return new ChunkFilter(clauses);
    }

    private static void Collect(Expression node, List<FilterClause> clauses)
    {
        switch (node)
        {
            case BinaryExpression { NodeType: ExpressionType.AndAlso } and:
                Collect(and.Left, clauses);
                Collect(and.Right, clauses);
                return;
            case MethodCallExpression { Method.Name: "ContainsKey" }:
                return; // the guard of a metadata clause: implied by the clause itself
            case BinaryExpression { NodeType: ExpressionType.Equal } equal:
                clauses.Add(new FilterClause(FieldOf(equal.Left), [ValueOf(equal.Right)]));
                return;
            case MethodCallExpression { Method.Name: nameof(Enumerable.Contains) } contains when contains.Arguments.Count == 2:
                clauses.Add(new FilterClause(FieldOf(contains.Arguments[1]), [.. ((IEnumerable<string>)ValueOfObject(contains.Arguments[0]))]));
                return;
            default:
                throw new NotSupportedException($"Filter expression '{node}' is not supported by AspireAi's chunk stores.");
        }
    }

    private static string FieldOf(Expression node) => node switch
    {
        MemberExpression { Member.Name: nameof(ChunkRecord.DocumentId) } => FilterClause.DocumentIdField,
        MethodCallExpression { Method.Name: "get_Item", Arguments: [ConstantExpression { Value: string key }] } => key,
        _ => throw new NotSupportedException($"Filter field '{node}' is not supported: use DocumentId or Metadata[\"key\"]."),
    };

    private static string ValueOf(Expression node) => (string)ValueOfObject(node);

    private static object ValueOfObject(Expression node) => node switch
    {
        ConstantExpression constant => constant.Value!,
        _ => Expression.Lambda(node).Compile().DynamicInvoke()!, // a captured variable
    };

    /// <summary>Whether <paramref name="record"/> passes (in-memory evaluation for the embedded store).</summary>
    public bool Matches(string documentId, IReadOnlyDictionary<string, string> metadata)
    {
        foreach (var clause in Clauses)
        {
            var value = clause.Field == FilterClause.DocumentIdField ? documentId : metadata.GetValueOrDefault(clause.Field);
            if (value is null || !clause.Values.Contains(value, StringComparer.Ordinal))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>One condition: <see cref="Field"/> equals one of <see cref="Values"/>.</summary>
public sealed record FilterClause(string Field, IReadOnlyList<string> Values)
{
    public const string DocumentIdField = "document_id";
}
