<powershell>
# generic-worker start-up. The worker type is passed explicitly.
$config = @{ rootURL = "${root_url}"; workerType = "${worker_type}" }
$config | ConvertTo-Json | Set-Content C:\generic-worker\generic-worker.config
Start-Service "Generic Worker"
</powershell>
