using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AspireAi.AppHost.Infrastructure;

/// <summary>
/// Qdrant as a container. <c>Aspire.Hosting.Qdrant</c> is not obtainable from the package registry here, so this is a small
/// resource of our own with the same shape: HTTP 6333 and gRPC 6334, an API key parameter, a data volume, a health check,
/// and the connection string its client integration reads (<c>Endpoint=…;Key=…</c>, the gRPC endpoint).
/// </summary>
internal sealed class QdrantResource(string name, ParameterResource apiKey) : ContainerResource(name), IResourceWithConnectionString
{
    public const string GrpcEndpointName = "grpc";
    public const string HttpEndpointName = "http";

    public ParameterResource ApiKey { get; } = apiKey;

    public EndpointReference GrpcEndpoint => new(this, GrpcEndpointName);

    public EndpointReference HttpEndpoint => new(this, HttpEndpointName);

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"Endpoint={GrpcEndpoint.Property(EndpointProperty.Url)};Key={ApiKey}");
}

internal static class QdrantExtensions
{
    private const string Image = "qdrant/qdrant";
    private const string Tag = "v1.15.4";

    public static IResourceBuilder<QdrantResource> AddQdrant(this IDistributedApplicationBuilder builder, string name)
    {
        var apiKey = builder.AddParameter($"{name}-api-key",
            new GenerateParameterDefault { MinLength = 24, Special = false }, secret: true, persist: true);
        var resource = new QdrantResource(name, apiKey.Resource);

        var healthCheckKey = $"{name}-ready";
        builder.Services.AddHealthChecks().AddAsyncCheck(healthCheckKey, async ct =>
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
            try
            {
                var response = await http.GetAsync($"{resource.HttpEndpoint.Url}/readyz", ct);
                return response.IsSuccessStatusCode ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy($"/readyz: {(int)response.StatusCode}");
            }
            catch (HttpRequestException ex)
            {
                return HealthCheckResult.Unhealthy(ex.Message);
            }
        });

        return builder.AddResource(resource)
            .WithImage(Image, Tag)
            .WithHttpEndpoint(targetPort: 6333, name: QdrantResource.HttpEndpointName)
            .WithEndpoint(targetPort: 6334, name: QdrantResource.GrpcEndpointName, scheme: "http")
            .WithEnvironment("QDRANT__SERVICE__API_KEY", apiKey)
            .WithEnvironment("QDRANT__SERVICE__ENABLE_STATIC_CONTENT", "0")
            .WithVolume(builder.VolumeName(name), "/qdrant/storage")
            .WithHealthCheck(healthCheckKey);
    }
}
