//! Evaluation of generated samples against reference data.

mod compare;
mod distances;
mod feature_net;
mod feature_stats;
mod images;
mod inception;
mod moments;

pub use compare::{compare, Comparison, Figure};
pub use distances::{
    energy_distance, mmd_rbf, noise_floor, sliced_wasserstein, NoiseFloor, Points,
};
pub use feature_net::{
    accuracy, features, load_classifier, predict, save_classifier, train_classifier,
    ClassifierMeta, ClassifierTraining,
};
pub use feature_stats::{
    frechet_distance, frechet_from_stats, kernel_distance, mean_cov, precision_recall, sqrt_psd,
};
pub use images::{
    compare_images, feature_figures, ClassifierFigures, FeatureFigures, FeatureNets,
    ImageComparison,
};
pub use inception::{
    inception_features, prepare_images, InceptionV3, WeightSource, INCEPTION_DIM, INCEPTION_SIZE,
};
pub use moments::{mixture_fit, MixtureFit};
