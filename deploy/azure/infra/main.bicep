// The subscription-level entry azd provisions (azd's Aspire template for this AppHost's manifest, as `azd infra gen`
// writes it), with one addition: the GPU workload profile type for inference (inferenceGpuProfileType).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment that can be used as part of naming resource convention, the name of the resource group for your application will use this name, prefixed with rg-')
param environmentName string

@minLength(1)
@description('The location used for all deployed resources')
param location string

@description('Serverless GPU profile type of the workload profile named "gpu" (inference-gpu-profile selects it)')
@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param inferenceGpuProfileType string = 'Consumption-GPU-NC8as-T4'

// The AppHost's parameters (parameter.v0 in the manifest): azd asks for or generates each one and keeps it in the
// environment; secret ones reach the container apps as secrets, read by azd when it deploys them (not used here).
@secure()
#disable-next-line no-unused-params
param gateway_master_key string
param inference_gpu_profile string = 'gpu'
param inference_model string
@metadata({azd: {
  type: 'generate'
  config: {length:22}
  }
})
@secure()
#disable-next-line no-unused-params
param postgres_password string
@metadata({azd: {
  type: 'generate'
  config: {length:24,noSpecial:true}
  }
})
@secure()
#disable-next-line no-unused-params
param qdrant_api_key string
@metadata({azd: {
  type: 'generate'
  config: {length:22,noSpecial:true}
  }
})
@secure()
#disable-next-line no-unused-params
param redis_password string

var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}
module resources 'resources.bicep' = {
  scope: rg
  name: 'resources'
  params: {
    location: location
    tags: tags
    inferenceGpuProfileType: inferenceGpuProfileType
  }
}

output MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.MANAGED_IDENTITY_CLIENT_ID
output MANAGED_IDENTITY_NAME string = resources.outputs.MANAGED_IDENTITY_NAME
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = resources.outputs.AZURE_LOG_ANALYTICS_WORKSPACE_NAME
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = resources.outputs.AZURE_CONTAINER_REGISTRY_ENDPOINT
output AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID string = resources.outputs.AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID
output AZURE_CONTAINER_REGISTRY_NAME string = resources.outputs.AZURE_CONTAINER_REGISTRY_NAME
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_NAME
output AZURE_CONTAINER_APPS_ENVIRONMENT_ID string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_ID
output AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN
output SERVICE_POSTGRES_VOLUME_ASPIREAIAPPHOSTPOSTGRESDATA_NAME string = resources.outputs.SERVICE_POSTGRES_VOLUME_ASPIREAIAPPHOSTPOSTGRESDATA_NAME
output SERVICE_QDRANT_VOLUME_ASPIREAIAPPHOSTQDRANTDATA_NAME string = resources.outputs.SERVICE_QDRANT_VOLUME_ASPIREAIAPPHOSTQDRANTDATA_NAME
output SERVICE_REDIS_VOLUME_ASPIREAIAPPHOSTREDISDATA_NAME string = resources.outputs.SERVICE_REDIS_VOLUME_ASPIREAIAPPHOSTREDISDATA_NAME
output AZURE_VOLUMES_STORAGE_ACCOUNT string = resources.outputs.AZURE_VOLUMES_STORAGE_ACCOUNT
output INFERENCE_GPU_PROFILE string = inference_gpu_profile
output INFERENCE_MODEL string = inference_model
