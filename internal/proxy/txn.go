package proxy

import (
	"context"
	"strings"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// EndTransaction commits or rolls back a half message named by the transaction id the proxy
// returned from SendMessage (or in a RecoverOrphanedTransactionCommand). UNSPECIFIED is
// "unknown": the broker keeps the half message and checks again later. go5 never sets source.
func (s *Server) EndTransaction(ctx context.Context, req *pb.EndTransactionRequest) (*pb.EndTransactionResponse, error) {
	err := s.endTransaction(ctx, req)
	return &pb.EndTransactionResponse{Status: toStatus(err)}, nil
}

func (s *Server) endTransaction(ctx context.Context, req *pb.EndTransactionRequest) error {
	c, err := s.begin(ctx)
	if err != nil {
		return err
	}
	topic, err := validateTopic(req.GetTopic(), true)
	if err != nil {
		return err
	}
	if err := s.authorize(c, auth.ResourceTopic, topic, auth.ActionPub); err != nil {
		return err
	}
	if strings.TrimSpace(req.GetTransactionId()) == "" {
		return statusErrorf(pb.Code_INVALID_TRANSACTION_ID, "transaction id cannot be empty")
	}
	ref, err := decodeTxnID(req.GetTransactionId())
	if err != nil {
		return statusErrorf(pb.Code_INVALID_TRANSACTION_ID, "transaction id is invalid")
	}
	res := ResolutionUnknown
	switch req.GetResolution() {
	case pb.TransactionResolution_COMMIT:
		res = ResolutionCommit
	case pb.TransactionResolution_ROLLBACK:
		res = ResolutionRollback
	}
	return s.backend.EndTransaction(ctx, &EndTransactionRequest{
		Broker: ref.Broker, ProducerGroup: topic, Topic: topic,
		CommitLogOffset: ref.CommitLogOffset, TranStateTableOffset: ref.TranStateTableOffset,
		MsgID: req.GetMessageId(), TransactionID: ref.TransactionID, Resolution: res,
		FromCheck: req.GetSource() == pb.TransactionSource_SOURCE_SERVER_CHECK,
	})
}
