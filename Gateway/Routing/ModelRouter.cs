using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Routing;

/// <summary>Where one model's requests go: the service address of a deployment (or Agents) and the model id to send.</summary>
internal sealed record ModelTarget(string Model, string Deployment, string Service);

/// <summary>
/// The model router: resolves an alias (<c>Gateway:Models:Aliases</c>), sends <c>agent:*</c> to Agents, and otherwise
/// finds the deployments that list the model. With fallbacks (<c>Gateway:Models:Fallbacks</c>) one request may have several
/// targets, tried in order while no replica could take it.
/// </summary>
internal sealed class ModelRouter(ModelCatalog catalog, IOptions<GatewayOptions> options)
{
    public const string AgentPrefix = "agent:";
    private readonly GatewayOptions _options = options.Value;

    public string Canonical(string model) => _options.Models.Aliases.GetValueOrDefault(model) ?? model;

    /// <summary>The targets for <paramref name="model"/>, primary first, then fallbacks; empty when nothing serves it.</summary>
    public async ValueTask<IReadOnlyList<ModelTarget>> ResolveAsync(string model, CancellationToken ct)
    {
        var primary = Canonical(model);
        var targets = new List<ModelTarget>();
        foreach (var candidate in _options.Models.Fallbacks.GetValueOrDefault(primary, []).Prepend(primary).Select(Canonical).Distinct())
        {
            if (candidate.StartsWith(AgentPrefix, StringComparison.Ordinal))
            {
                targets.Add(new ModelTarget(candidate, "agents", _options.Agents));
                continue;
            }

            foreach (var deployment in await catalog.DeploymentsForAsync(candidate, ct))
            {
                targets.Add(new ModelTarget(candidate, deployment, _options.EffectiveDeployments[deployment]));
            }
        }

        return targets;
    }
}
