{{/*
The pod spec of an Airflow component. Call with a dict:
  root            $
  team            a normalised team (team components and internal APIs), or absent
  component       the component's name (container name, labels)
  args            the airflow subcommand and its arguments (the image's entrypoint is `airflow`)
  env             the container's environment (YAML list, from _env.tpl)
  serviceAccount  the ServiceAccount's name
  automountToken  whether the pod gets a ServiceAccount token (only the scheduler, and the webserver
                  with KubernetesExecutor teams, talk to the Kubernetes API)
  resources, scheduling ({nodeSelector, tolerations, affinity}), ports (list of ContainerPort),
  probes (YAML of readinessProbe/livenessProbe), initContainers (YAML list), podTemplates (mount
  the KubernetesExecutor teams' pod templates), restartPolicy (for jobs), command (overrides the
  entrypoint, e.g. a shell for jobs)
*/}}
{{- define "airflow-teams.airflowPodSpec" -}}
{{- $root := .root }}
{{- $t := .team }}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: {{ .automountToken | default false }}
{{- include "airflow-teams.podSecurityContext" $root | nindent 0 }}
{{- include "airflow-teams.imagePullSecrets" $root | nindent 0 }}
{{- include "airflow-teams.scheduling" (.scheduling | default dict) | nindent 0 }}
{{- with .restartPolicy }}
restartPolicy: {{ . }}
{{- end }}
{{- with .initContainers }}
initContainers:
  {{- . | nindent 2 }}
{{- end }}
containers:
  - name: {{ .component }}
    {{- /* a team's image runs its code; its internal API (the database URL) runs the fork's image */}}
    {{- include "airflow-teams.airflowImage" (list $root (and $t (ne .component "internal-api") $t.image)) | nindent 4 }}
    {{- with .command }}
    command:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      {{- .env | nindent 6 }}
    {{- with .ports }}
    ports:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- include "airflow-teams.containerSecurityContext" $root | nindent 4 }}
    {{- with .probes }}
    {{- . | nindent 4 }}
    {{- end }}
    volumeMounts:
      {{- include "airflow-teams.volumeMounts" . | nindent 6 }}
volumes:
  {{- include "airflow-teams.volumes" . | nindent 2 }}
{{- end }}

{{/* Mounts of an Airflow container (same dict as airflowPodSpec). */}}
{{- define "airflow-teams.volumeMounts" -}}
- name: config
  mountPath: {{ include "airflow-teams.configDir" .root }}
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: logs
  mountPath: /opt/airflow/logs
{{- if .podTemplates }}
- name: pod-templates
  mountPath: /opt/airflow/pod-templates
  readOnly: true
{{- end }}
{{- with .team }}
{{- if .dagsVolume }}
- name: dags
  mountPath: {{ .dagsMountPath }}
  readOnly: true
{{- end }}
{{- with .extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes of an Airflow pod (same dict as airflowPodSpec). */}}
{{- define "airflow-teams.volumes" -}}
- name: config
  configMap:
    name: {{ include "airflow-teams.objectName" (list .root "config") }}
- name: tmp
  emptyDir: {}
- name: logs
  emptyDir: {}
{{- if .podTemplates }}
- name: pod-templates
  projected:
    sources:
      {{- range (include "airflow-teams.teams" .root | fromYaml).teams }}
      {{- if .kubernetes }}
      - configMap:
          name: {{ .podTemplateConfigMap }}
          items:
            - key: pod-template.yaml
              path: {{ .slug }}.yaml
      {{- end }}
      {{- end }}
{{- end }}
{{- with .team }}
{{- if .dagsVolume }}
- name: dags
  {{- toYaml .dagsVolume | nindent 2 }}
{{- end }}
{{- with .extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* An init container that waits until the metadata database is migrated (shared components). */}}
{{- define "airflow-teams.waitForMigrations" -}}
- name: wait-for-migrations
  {{- include "airflow-teams.airflowImage" (list .root (and .team .team.image)) | nindent 2 }}
  args: ["db", "check-migrations", "--migration-wait-timeout", "600"]
  env:
    {{- .env | nindent 4 }}
  {{- include "airflow-teams.containerSecurityContext" .root | nindent 2 }}
  volumeMounts:
    {{- include "airflow-teams.volumeMounts" . | nindent 4 }}
{{- end }}

{{/*
An init container of a team pod that waits until the team's internal API answers its health check
(team pods have no database to wait for). Argument: dict "root" $ "team" $t.
*/}}
{{- define "airflow-teams.waitForInternalApi" -}}
- name: wait-for-internal-api
  {{- include "airflow-teams.airflowImage" (list .root .team.image) | nindent 2 }}
  command: ["python", "-c"]
  args:
    - |
      import sys, time, urllib.request
      url = sys.argv[1] + "/internal_api/v1/health"
      for attempt in range(120):
          try:
              urllib.request.urlopen(url, timeout=5).read()
              sys.exit(0)
          except Exception as err:
              print(f"waiting for {url}: {err}", flush=True)
              time.sleep(5)
      sys.exit(f"{url} did not answer within 10 minutes")
    - {{ include "airflow-teams.internalApiUrl" .team | quote }}
  {{- include "airflow-teams.containerSecurityContext" .root | nindent 2 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}

{{- define "airflow-teams.schedulerProbes" -}}
livenessProbe:
  exec:
    command: ["airflow", "jobs", "check", "--job-type", "SchedulerJob", "--local"]
  initialDelaySeconds: 60
  periodSeconds: 60
  timeoutSeconds: 30
  failureThreshold: 5
{{- end }}

{{- define "airflow-teams.httpProbes" -}}
readinessProbe:
  httpGet:
    path: {{ .path }}
    port: {{ .port }}
  initialDelaySeconds: {{ .initialDelaySeconds }}
  periodSeconds: 10
  timeoutSeconds: 10
livenessProbe:
  httpGet:
    path: {{ .path }}
    port: {{ .port }}
  initialDelaySeconds: {{ add 60 .initialDelaySeconds }}
  periodSeconds: 30
  timeoutSeconds: 10
  failureThreshold: 5
{{- end }}

{{/* The KubernetesExecutor pod template of a team (dict "root" $ "team" $t). */}}
{{- define "airflow-teams.taskPod" -}}
{{- $t := .team }}
{{- $labels := dict "root" .root "component" "worker" "team" $t "perimeter" true }}
{{- $env := include "airflow-teams.teamEnv" (dict "root" .root "team" $t "kind" "task") }}
apiVersion: v1
kind: Pod
metadata:
  name: task-pod-of-{{ $t.slug }}
  namespace: {{ $t.namespace }}
  labels:
    {{- include "airflow-teams.podLabels" $labels | nindent 4 }}
spec:
  restartPolicy: Never
  {{- include "airflow-teams.airflowPodSpec" (dict
      "root" .root "team" $t "component" "base" "command" (list "/usr/bin/env") "args" (list "airflow" "version")
      "env" $env "serviceAccount" $t.serviceAccount
      "resources" $t.resources.worker "scheduling" $t.scheduling) | nindent 2 }}
{{- end }}
