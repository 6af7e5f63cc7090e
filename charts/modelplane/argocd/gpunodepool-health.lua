-- Argo CD health of a modelplane.dev/v1alpha1 GPUNodePool; installation: charts/modelplane/README.md.
-- The operator writes the pool's status within seconds of a change: the nodes matching spec.nodeSelector and free GPUs.
local hs = {}
local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the modelplane operator to count the pool's nodes"
  return hs
end
if obj.metadata.generation ~= nil and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "generation " .. obj.metadata.generation .. " not yet observed (status is of generation "
    .. status.observedGeneration .. ")"
  return hs
end
local ready = status.readyNodes or 0
local summary = ready .. "/" .. obj.spec.nodes .. " nodes ready, " .. (status.freeGpus or 0) .. "/"
  .. (status.totalGpus or 0) .. " GPUs free"
if ready == 0 then
  hs.status = "Degraded"
  hs.message = "no ready node matches spec.nodeSelector: " .. summary
elseif ready < obj.spec.nodes then
  hs.status = "Progressing"
  hs.message = summary
else
  hs.status = "Healthy"
  hs.message = summary
end
return hs
