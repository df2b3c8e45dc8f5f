using AspireAi.Agents.Definitions;

namespace AspireAi.Agents.Tools;

/// <summary>Builds a run's functions from its agent's tool list through the registered <see cref="IToolFactory"/>s; a later registration of a type replaces an earlier one (a deployment may swap a built-in tool).</summary>
public sealed class ToolCatalog(IEnumerable<IToolFactory> factories)
{
    private readonly Dictionary<string, IToolFactory> _factories = factories.GroupBy(f => f.Type).ToDictionary(g => g.Key, g => g.Last());

    public async Task<IReadOnlyList<ToolFunction>> CreateAsync(ToolContext context, CancellationToken ct)
    {
        var functions = new List<ToolFunction>();
        foreach (var spec in context.Agent.Tools)
        {
            if (!_factories.TryGetValue(spec.Type, out var factory))
            {
                throw new ToolException($"Tool type '{spec.Type}' is not available in this service.");
            }

            foreach (var function in await factory.CreateAsync(spec, context, ct))
            {
                functions.Add(spec.RequiresApproval ? function with { RequiresApproval = true } : function);
            }
        }

        return functions;
    }
}
