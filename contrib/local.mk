EXTRA_DIST += contrib/wharf.pc.in contrib/quickstart.sh .ci/run

# Packaging and the deploy kit (whole directories: new files come along).
EXTRA_DIST += \
	contrib/debian \
	contrib/rpm \
	contrib/systemd \
	contrib/nginx \
	contrib/deploy \
	contrib/docker \
	contrib/k8s \
	contrib/plugin-template \
	.dockerignore \
	tests/integration/test_deploy_kit.py \
	tests/integration/test_deploy.py \
	tests/integration/test_nginx.py \
	tests/integration/test_plugin_template.py \
	tests/integration/test_systemd.py
