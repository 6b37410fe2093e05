package k8s

import (
	"context"
	"fmt"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// SliceClient lists and watches the EndpointSlices of one namespace. The
// typed client of client-go's kubernetes clientset (and its fake) satisfies
// it: clientset.DiscoveryV1().EndpointSlices(namespace).
type SliceClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*discoveryv1.EndpointSliceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// restSlices is the SliceClient on client-go's REST client with a scheme
// that knows discovery.k8s.io/v1 only. client-go's clientset would register
// every API group of Kubernetes in the binary (16 MB more in gonode); this is
// the same requests through the same REST client.
type restSlices struct {
	client    *rest.RESTClient
	namespace string
	params    runtime.ParameterCodec
}

// newRESTSlices builds the SliceClient of namespace from rc (not modified).
func newRESTSlices(rc *rest.Config, namespace string) (*restSlices, error) {
	scheme := runtime.NewScheme()
	if err := discoveryv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kubernetes scheme: %w", err)
	}
	c := rest.CopyConfig(rc)
	gv := discoveryv1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	// Protobuf is smaller and cheaper for the API server to encode; JSON
	// remains acceptable.
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	if c.UserAgent == "" {
		c.UserAgent = "gonode-discovery " + rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &restSlices{client: client, namespace: namespace, params: runtime.NewParameterCodec(scheme)}, nil
}

func (r *restSlices) List(ctx context.Context, opts metav1.ListOptions) (*discoveryv1.EndpointSliceList, error) {
	var timeout time.Duration
	if opts.TimeoutSeconds != nil {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	out := &discoveryv1.EndpointSliceList{}
	err := r.client.Get().Namespace(r.namespace).Resource("endpointslices").
		VersionedParams(&opts, r.params).Timeout(timeout).Do(ctx).Into(out)
	return out, err
}

func (r *restSlices) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	var timeout time.Duration
	if opts.TimeoutSeconds != nil {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	opts.Watch = true
	return r.client.Get().Namespace(r.namespace).Resource("endpointslices").
		VersionedParams(&opts, r.params).Timeout(timeout).Watch(ctx)
}
