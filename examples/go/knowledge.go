package main

import (
	"context"
	"fmt"
	"strings"

	switchboardv1 "github.com/switchboard/switchboard/gen/go/switchboard/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// ingest streams documents into a collection (KnowledgeService.IngestDocuments, client-streaming).
func ingest(ctx context.Context, knowledge switchboardv1.KnowledgeServiceClient, collection string, docs []*switchboardv1.Document) (*switchboardv1.IngestDocumentsResponse, error) {
	stream, err := knowledge.IngestDocuments(ctx)
	if err != nil {
		return nil, describe("IngestDocuments", err, nil)
	}
	for _, doc := range docs {
		if err := stream.Send(&switchboardv1.IngestDocumentsRequest{Collection: collection, Document: doc}); err != nil {
			break // the server ended the call: CloseAndRecv below says why
		}
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		return nil, describe("IngestDocuments", err, stream.Trailer())
	}
	return reply, nil
}

// parseFilter reads "field=value" conditions, all of which must hold (a value with commas is any
// of them), into a knowledge Filter: e.g. "metadata.team=platform", "tags=runbook,howto".
func parseFilter(conditions []string) (*switchboardv1.Filter, error) {
	if len(conditions) == 0 {
		return nil, nil
	}
	filter := &switchboardv1.Filter{}
	for _, raw := range conditions {
		field, value, ok := strings.Cut(raw, "=")
		if !ok || field == "" || value == "" {
			return nil, fmt.Errorf("filter %q: write field=value (or field=a,b for any of them)", raw)
		}
		condition := &switchboardv1.FilterCondition{Field: field}
		if values := strings.Split(value, ","); len(values) > 1 {
			list := &structpb.ListValue{}
			for _, v := range values {
				list.Values = append(list.Values, structpb.NewStringValue(v))
			}
			condition.Condition = &switchboardv1.FilterCondition_AnyOf{AnyOf: list}
		} else {
			condition.Condition = &switchboardv1.FilterCondition_Equals{Equals: structpb.NewStringValue(value)}
		}
		filter.Must = append(filter.Must, condition)
	}
	return filter, nil
}

// search asks a collection (KnowledgeService.Search, hybrid) for the topK passages matching query
// and filter (nil: none).
func search(ctx context.Context, knowledge switchboardv1.KnowledgeServiceClient, collection, query string, filter *switchboardv1.Filter, topK uint32) ([]*switchboardv1.SearchHit, error) {
	var trailer metadata.MD
	reply, err := knowledge.Search(ctx, &switchboardv1.SearchRequest{
		Collection: collection,
		Query:      query,
		Mode:       switchboardv1.SearchMode_SEARCH_MODE_HYBRID,
		TopK:       topK,
		Filter:     filter,
	}, grpc.Trailer(&trailer))
	if err != nil {
		return nil, describe("Search", err, trailer)
	}
	return reply.GetHits(), nil
}
